// examples/embedding.cpp - a host application that embeds shardflow in its own actor system.
//
// It starts a runtime (one supervision tree), starts four shards with a flusher of its own (one of
// them on a detached thread, as a blocking flusher would need), pushes records into them, tells them
// the input has ended, waits for the runtime's outcome (each shard ended, stopped or gave up), and
// reads each shard's meters (its last acknowledged checkpoint). Exit code 0 when every shard ended
// at its last record, 1 otherwise.
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/flusher.hpp>

namespace {

// The host's own flusher: batches up to 1,000 records and "writes" them by adding up their bytes.
class byte_counting_flusher final : public shardflow::flusher {
public:
  shardflow::add_result add(const shardflow::stream_record& x, shardflow::flush_token t) override {
    if (batch_.size() >= 1000)
      return shardflow::add_result::full;
    bytes_ += x.data.size();
    batch_.push_back(t);
    return shardflow::add_result::added;
  }

  std::vector<shardflow::flush_token> flush(shardflow::flush_mode) override {
    written_ += bytes_; // a real flusher writes and syncs here, then returns the tokens
    bytes_ = 0;
    return std::exchange(batch_, {});
  }

  std::vector<shardflow::flush_token> heartbeat() override {
    return {};
  }

private:
  std::vector<shardflow::flush_token> batch_;
  std::size_t bytes_ = 0;
  std::size_t written_ = 0;
};

} // namespace

int main() {
  caf::actor_system_config cfg;
  shardflow::configure(cfg);
  cfg.set("scheduler.max-threads", std::max(1u, std::thread::hardware_concurrency()));
  caf::actor_system sys{cfg};

  shardflow::runtime_config rcfg;
  rcfg.finite = true; // the runtime ends once every shard has ended
  // rcfg.sink: a checkpoint sink over the host's store (actors/checkpoint_sink.hpp); by default
  // the runtime keeps checkpoints in memory.
  auto rt = shardflow::runtime::start(sys, rcfg);
  if (!rt) {
    std::fprintf(stderr, "embedding: %s\n", sys.render(rt.error()).c_str());
    return 1;
  }
  constexpr int shards = 4;
  constexpr std::uint64_t records = 50'000;
  for (int s = 0; s < shards; ++s) {
    shardflow::shard_group_config g;
    g.shard.id = "orders-" + std::to_string(s);
    g.shard.make_flusher = [](const shardflow::shard_id&) {
      return std::make_unique<byte_counting_flusher>();
    };
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(50);
    g.shard.detached = s == 0; // a blocking flusher would want a thread of its own
    g.finite = true;
    if (auto err = (*rt)->start_shard(g)) {
      std::fprintf(stderr, "embedding: %s\n", sys.render(err).c_str());
      return 1;
    }
  }
  for (std::uint64_t first = 0; first < records; first += 500) {
    for (int s = 0; s < shards; ++s) {
      std::vector<shardflow::stream_record> xs(500);
      for (std::uint64_t i = 0; i < 500; ++i) {
        xs[i].partition_key = "customer-" + std::to_string((first + i) % 97);
        xs[i].data = "order " + std::to_string(first + i);
        xs[i].sequence.base = shardflow::sequence_base{first + i};
      }
      if (auto err = (*rt)->push("orders-" + std::to_string(s),
                                 shardflow::record_batch{std::move(xs)})) {
        std::fprintf(stderr, "embedding: push: %s\n", sys.render(err).c_str());
        return 1;
      }
    }
  }
  auto st = (*rt)->stats("orders-1");
  if (st)
    std::printf("orders-1 so far: %llu records received, %llu checkpoints acknowledged\n",
                static_cast<unsigned long long>(st->received),
                static_cast<unsigned long long>(st->acked));
  for (int s = 0; s < shards; ++s)
    (*rt)->end("orders-" + std::to_string(s));
  auto outcome = (*rt)->await(std::chrono::seconds(60));
  if (!outcome.ended) {
    std::fprintf(stderr, "embedding: the shards did not finish within a minute\n");
    return 1;
  }
  // Each shard's life ended one way: ended (all records checkpointed), stopped, or gave_up (its
  // group exceeded its restart intensity; the reason says why). clean(): all ended or stopped.
  for (auto& s : outcome.shards)
    std::printf("%s: %s%s%s\n", s.id.c_str(), shardflow::to_string(s.outcome),
                s.reason.empty() ? "" : ": ", s.reason.c_str());
  if (!outcome.clean()) {
    std::fprintf(stderr, "embedding: the runtime failed: %s\n",
                 outcome.reason ? sys.render(outcome.reason).c_str() : "a shard gave up");
    return 1;
  }
  std::printf("runtime ended: every shard finished\n");
  // The meters say where each shard's last acknowledged checkpoint is, without asking the store.
  int rc = 0;
  for (const auto& id : (*rt)->shards()) {
    auto m = (*rt)->meters(id);
    const auto at = m->acked_position.load(std::memory_order_relaxed);
    const bool at_end = m->acked_end.load(std::memory_order_relaxed);
    std::printf("%s: checkpoint %llu%s, %llu records received, %llu restarts\n", id.c_str(),
                static_cast<unsigned long long>(at), at_end ? " (ended)" : "",
                static_cast<unsigned long long>(m->records_received.load()),
                static_cast<unsigned long long>(m->restarts.load()));
    if (at != records - 1 || !at_end)
      rc = 1;
  }
  return rc;
}
