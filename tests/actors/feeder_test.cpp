#include <shardflow/actors/feeder.hpp>

#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include <shardflow/actors/messages.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

// A finite replayable source of `count` records of `bytes` data bytes each (empty keys).
class sized_source final : public record_source {
public:
  sized_source(std::uint64_t count, std::size_t bytes) : count_(count), bytes_(bytes) {
  }

  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = after ? *after->base.to_uint64() + 1 : 0;
  }

  record_batch read(std::size_t max) override {
    std::vector<stream_record> xs;
    for (; xs.size() < max && pos_ < count_; ++pos_) {
      stream_record x;
      x.data.assign(bytes_, 'x');
      x.sequence.base = sequence_base{pos_};
      xs.push_back(std::move(x));
    }
    return record_batch{std::move(xs)};
  }

  bool at_end() const override {
    return pos_ >= count_;
  }

private:
  std::uint64_t count_;
  std::size_t bytes_;
  std::uint64_t pos_ = 0;
};

// What a stand-in for the shard received from its feeder.
struct received {
  std::vector<record_batch> batches;
  bool ended = false;
  caf::actor feeder;

  std::size_t bytes() const {
    std::size_t n = 0;
    for (auto& b : batches)
      n += payload_bytes(b);
    return n;
  }
  std::size_t records() const {
    std::size_t n = 0;
    for (auto& b : batches)
      n += b.size();
    return n;
  }
};

struct fixture : testing::deterministic_fixture {
  std::vector<caf::actor> started;

  ~fixture() {
    // The stand-ins live until told; their feeders follow them down.
    for (auto& a : started)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  // Spawns a feeder over `count` records of `bytes` bytes under a stand-in shard (also its
  // supervisor) that attaches and demands `credit` records and `credit_bytes` bytes once; the
  // stand-in gives credit back only when `give_back` is called.
  caf::actor start(std::shared_ptr<received> out, std::uint64_t count, std::size_t bytes,
                   std::uint64_t credit, std::uint64_t credit_bytes) {
    feeder_config cfg;
    cfg.max_batch = 50;
    cfg.poll_interval = 0ms;
    auto shard = spawn_fn([=](caf::event_based_actor* self) -> caf::behavior {
      out->feeder = spawn_feeder(
        self, [count, bytes] { return std::make_shared<sized_source>(count, bytes); }, cfg);
      self
        ->request(out->feeder, caf::infinite, attach_atom::value, std::optional<sequence_number>{})
        .then(
          [=](caf::ok_atom) { self->send(out->feeder, demand_atom::value, credit, credit_bytes); },
          [](caf::error&) {});
      return {
        [out](records_atom, const record_batch& b) { out->batches.push_back(b); },
        [out](end_atom) { out->ended = true; },
        [self, out](caf::get_atom) {
          // Give back what the last batch took, as a shard does once it processed it.
          const auto& b = out->batches.back();
          self->send(out->feeder, demand_atom::value, static_cast<std::uint64_t>(b.size()),
                     static_cast<std::uint64_t>(payload_bytes(b)));
        },
      };
    });
    run();
    started.push_back(shard);
    return shard;
  }
};

} // namespace

SCENARIO_METHOD(fixture, "a feeder sends no more payload bytes than the shard's byte credit",
                "[actors][feeder]") {
  auto out = std::make_shared<received>();
  // Plenty of record credit (1,000), but only 10,000 bytes: ten records of 1,000 bytes.
  auto shard = start(out, 100, 1000, 1000, 10'000);
  CHECK(out->records() == 10);
  CHECK(out->bytes() == 10'000);
  // Each batch given back lets the same bytes through again, never more.
  std::size_t given_back = 0;
  for (int i = 0; i < 5; ++i) {
    given_back += payload_bytes(out->batches.back());
    anon_send(shard, caf::get_atom::value);
    run();
    CHECK(out->bytes() - given_back <= 10'000);
  }
  CHECK(out->records() == 10 + given_back / 1000);
}

SCENARIO_METHOD(fixture, "a record larger than the byte credit still goes through, alone",
                "[actors][feeder]") {
  auto out = std::make_shared<received>();
  auto shard = start(out, 3, 50'000, 100, 10'000);
  REQUIRE(out->batches.size() == 1);
  CHECK(out->batches[0].size() == 1);
  for (int i = 0; i < 2; ++i) {
    anon_send(shard, caf::get_atom::value);
    run();
  }
  CHECK(out->records() == 3);
  for (auto& b : out->batches)
    CHECK(b.size() == 1);
  CHECK(out->ended);
}

SCENARIO_METHOD(fixture, "a batch cut at the byte credit loses and repeats no record",
                "[actors][feeder]") {
  auto out = std::make_shared<received>();
  // 400-byte records, 1,000 bytes of credit: batches of 2 (800 bytes; a third would pass it).
  auto shard = start(out, 25, 400, 1000, 1000);
  for (int i = 0; i < 40 && !out->ended; ++i) {
    anon_send(shard, caf::get_atom::value);
    run();
  }
  REQUIRE(out->ended);
  std::uint64_t next = 0;
  for (auto& b : out->batches) {
    CHECK(payload_bytes(b) <= 1000);
    for (auto& x : b)
      CHECK(*x.sequence.base.to_uint64() == next++);
  }
  CHECK(next == 25);
}

SCENARIO("a replay buffer counts the payload bytes it keeps", "[actors][replay_buffer]") {
  replay_buffer buf;
  std::vector<stream_record> xs(10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    xs[i].partition_key = "k";
    xs[i].data.assign(99, 'x');
    xs[i].sequence.base = sequence_base{i};
  }
  buf.append(record_batch{xs});
  CHECK(buf.retained_bytes() == 1000);
  buf.release(xs[2].sequence); // the first three, inside the batch
  CHECK(buf.retained() == 7);
  CHECK(buf.retained_bytes() == 700);
  buf.release(xs[9].sequence); // the rest: the whole batch
  CHECK(buf.retained() == 0);
  CHECK(buf.retained_bytes() == 0);
}
