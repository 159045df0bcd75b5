// Chaos: 64 finite shards, 1,000,000 records, a flusher that throws at seeded random points, under
// one supervision tree on the deterministic scheduler. Afterwards every record was flushed at least
// once, every shard is checkpointed at its last record, the restarts match the injected faults, and
// every duplicate lies in the window a crash left between the acknowledged checkpoint and what the
// dead incarnation had flushed.
#include <cstdio>
#include <memory>
#include <random>
#include <unordered_map>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include "tests/support/generator_source.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/core/checkpoint_store.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t shards = 64;
constexpr std::uint64_t records_per_shard = 15'625; // 64 * 15,625 = 1,000,000
constexpr double crash_probability = 4e-4;          // per record offered

struct crash_window {
  std::uint64_t acked_plus_one; // first record not covered by the acknowledged checkpoint
  std::uint64_t flushed_end;    // one past the last record the dead incarnation flushed
};

// Everything the flushers of all incarnations saw, shared with the test (one thread).
struct ledger {
  std::shared_ptr<memory_checkpoint_store> store;
  std::vector<std::vector<std::uint8_t>> flushed{shards,
                                                 std::vector<std::uint8_t>(records_per_shard)};
  std::vector<std::mt19937_64> rng;
  std::vector<std::vector<crash_window>> windows{shards};
  std::uint64_t crashes = 0;
};

// Holds up to 256 records, makes them durable on flush, and throws at random points.
class chaos_flusher final : public flusher {
public:
  chaos_flusher(std::shared_ptr<ledger> l, std::size_t shard) : l_(std::move(l)), shard_(shard) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    std::uniform_real_distribution<double> u{0.0, 1.0};
    if (u(l_->rng[shard_]) < crash_probability) {
      auto row = l_->store->peek(id());
      const std::uint64_t acked = row && row->position ? *row->position->base.to_uint64() + 1 : 0;
      l_->windows[shard_].push_back({acked, flushed_end_});
      ++l_->crashes;
      throw std::runtime_error("chaos");
    }
    if (pending_.size() >= 256)
      return add_result::full;
    pending_.emplace_back(token, *x.sequence.base.to_uint64());
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode) override {
    std::vector<flush_token> result;
    for (auto& [token, index] : pending_) {
      auto& n = l_->flushed[shard_][index];
      n = static_cast<std::uint8_t>(n < 255 ? n + 1 : n);
      flushed_end_ = std::max(flushed_end_, index + 1);
      result.push_back(token);
    }
    pending_.clear();
    return result;
  }

  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  std::string id() const {
    return "chaos-" + std::to_string(shard_);
  }

  std::shared_ptr<ledger> l_;
  std::size_t shard_;
  std::vector<std::pair<flush_token, std::uint64_t>> pending_;
  std::uint64_t flushed_end_ = 0;
};

} // namespace

SCENARIO_METHOD(shardflow::testing::deterministic_fixture,
                "a million records survive hundreds of seeded crashes across 64 shards",
                "[actors][chaos]") {
  auto l = std::make_shared<ledger>();
  l->store = std::make_shared<memory_checkpoint_store>();
  for (std::size_t s = 0; s < shards; ++s)
    l->rng.emplace_back(0xC4A05 + s);
  auto sink = spawn_checkpoint_sink(sys, l->store);
  std::vector<std::shared_ptr<shard_meters>> meters;
  std::vector<child_spec> groups;
  for (std::size_t s = 0; s < shards; ++s) {
    shard_group_config g;
    g.shard.id = "chaos-" + std::to_string(s);
    meters.push_back(std::make_shared<shard_meters>());
    g.shard.meters = meters.back();
    g.shard.make_flusher = [l, s](const shard_id&) {
      return std::make_unique<chaos_flusher>(l, s);
    };
    g.shard.batch.flush_interval = 0ms;
    g.shard.batch.checkpoint_interval = 0ms;
    g.shard.credit = 2000;
    g.feeder.max_batch = 500;
    g.source = shardflow::testing::generator(g.shard.id, records_per_shard);
    g.sink = sink;
    g.finite = true;
    g.intensity = 1000;
    g.backoff = {};                       // restarts at once: the test does not wait out a backoff
    g.report = [](const std::string&) {}; // 600 crashes are expected here
    groups.push_back(shard_group(std::move(g)));
  }
  supervisor_flags f;
  f.intensity = 10;
  f.shutdown_mode = auto_shutdown::all_significant;
  auto root = spawn_supervisor(sys, f, std::move(groups));
  REQUIRE(root);
  run();
  REQUIRE(is_dead(*root)); // the job ended by itself once every shard had finished

  std::uint64_t restarts = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t window_total = 0;
  std::uint64_t missing = 0;
  std::uint64_t outside_window = 0;
  for (std::size_t s = 0; s < shards; ++s) {
    const auto id = "chaos-" + std::to_string(s);
    auto row = l->store->peek(id);
    REQUIRE(row);
    REQUIRE(row->position);
    CHECK(*row->position->base.to_uint64() == records_per_shard - 1);
    CHECK(row->ended);
    restarts += row->generation - 1;
    // The meters tell the same story as the store, without asking it.
    const auto& m = *meters[s];
    CHECK(m.generation == row->generation);
    CHECK(m.restarts == row->generation - 1);
    CHECK(m.acked_position == records_per_shard - 1);
    CHECK(m.acked_end);
    CHECK(m.outcome == shard_outcome::ended);
    CHECK(m.records_received >= records_per_shard); // replays count again
    for (auto& w : l->windows[s])
      window_total += w.flushed_end > w.acked_plus_one ? w.flushed_end - w.acked_plus_one : 0;
    for (std::uint64_t i = 0; i < records_per_shard; ++i) {
      const auto n = l->flushed[s][i];
      if (n == 0)
        ++missing;
      if (n > 1) {
        duplicates += n - 1;
        bool in_window = false;
        for (auto& w : l->windows[s])
          in_window = in_window || (i >= w.acked_plus_one && i < w.flushed_end);
        if (!in_window)
          ++outside_window;
      }
    }
  }
  std::printf("chaos: %zu shards, %llu records, %llu injected crashes, %llu restarts, "
              "%llu duplicates (bound by the crash windows: %llu)\n",
              shards, static_cast<unsigned long long>(shards * records_per_shard),
              static_cast<unsigned long long>(l->crashes),
              static_cast<unsigned long long>(restarts),
              static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(window_total));
  CHECK(l->crashes >= 200);
  CHECK(restarts == l->crashes);
  CHECK(missing == 0);
  CHECK(outside_window == 0);
  CHECK(duplicates <= window_total);
}
