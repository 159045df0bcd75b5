#include <shardflow/actors/feeder.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include "tests/support/generator_source.hpp"
#include "tests/support/recording_flusher.hpp"
#include <shardflow/actors/messages.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

using testing::sized_source;

// What a stand-in for the shard received from its feeder.
struct received {
  std::vector<record_batch> batches;
  bool ended = false;
  int idles = 0; // times the feeder said its source has nothing now
  int pressures = 0; // times the feeder asked for a checkpoint because pushes wait
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
  std::size_t push_limit = 100'000;

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
    return start(
      out, [count, bytes] { return std::make_shared<sized_source>(count, bytes); }, credit,
      credit_bytes);
  }

  // The same over any source; the stand-in attaches after `after` (default: from the start).
  caf::actor start(std::shared_ptr<received> out, source_factory make, std::uint64_t credit,
                   std::uint64_t credit_bytes, std::optional<sequence_number> after = {}) {
    feeder_config cfg;
    cfg.max_batch = 50;
    cfg.poll_interval = 0ms;
    cfg.push_limit = push_limit;
    auto shard = spawn_fn([=](caf::event_based_actor* self) -> caf::behavior {
      out->feeder = spawn_feeder(self, make, cfg);
      self->request(out->feeder, caf::infinite, attach_atom::value, after)
        .then(
          [=](caf::ok_atom) { self->send(out->feeder, demand_atom::value, credit, credit_bytes); },
          [](caf::error&) {});
      return {
        [out](records_atom, const record_batch& b) { out->batches.push_back(b); },
        [out](end_atom) { out->ended = true; },
        [out](idle_atom) { ++out->idles; },
        [out](pressure_atom) { ++out->pressures; },
        [self, out](acked_atom, const sequence_number& upto) {
          // Forward a durable checkpoint, as a shard does once its sink acknowledged it.
          self->send(out->feeder, acked_atom::value, upto);
        },
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

namespace {

using testing::make_batch;

std::vector<std::uint64_t> sequences(const received& r) {
  std::vector<std::uint64_t> result;
  for (auto& b : r.batches)
    for (auto& x : b)
      result.push_back(*x.sequence.base.to_uint64());
  return result;
}

} // namespace

SCENARIO_METHOD(fixture, "a feeder ignores demand from any actor but the attached shard",
                "[actors][feeder]") {
  auto out = std::make_shared<received>();
  auto shard = start(out, 100, 10, 10, 1'000'000);
  CHECK(out->records() == 10);
  // A dead incarnation's late demand (here: a message without a sender) lets nothing through.
  anon_send(out->feeder, demand_atom::value, std::uint64_t{50}, std::uint64_t{1'000'000});
  run();
  CHECK(out->records() == 10);
  anon_send(shard, caf::get_atom::value); // the attached shard gives back its batch
  run();
  CHECK(out->records() == 20);
}

SCENARIO_METHOD(fixture,
                "a feeder rewinds its source to the checkpoint an incarnation attaches with",
                "[actors][feeder]") {
  auto out = std::make_shared<received>();
  sequence_number after;
  after.base = sequence_base{41};
  start(
    out, [] { return std::make_shared<sized_source>(50, 1); }, 1000, 1'000'000, after);
  CHECK(sequences(*out).front() == 42);
  CHECK(out->records() == 8);
  CHECK(out->ended);
}

SCENARIO_METHOD(fixture, "a feeder sends the end once", "[actors][feeder]") {
  auto out = std::make_shared<received>();
  auto shard = start(out, 3, 1, 1000, 1'000'000);
  CHECK(out->ended);
  out->ended = false;
  anon_send(shard, caf::get_atom::value); // more demand after the end
  run();
  CHECK(out->records() == 3);
  CHECK_FALSE(out->ended);
}

SCENARIO_METHOD(fixture, "a feeder over a replayable source takes no pushes", "[actors][feeder]") {
  auto out = std::make_shared<received>();
  start(out, 3, 1, 1000, 1'000'000);
  auto r = ask<caf::ok_atom>(out->feeder, push_atom::value, make_batch(0, 1));
  CHECK_FALSE(r.value);
  CHECK(code_of(r.err) == errc::bad_input); // a misuse by the host, not a missing child
  CHECK_THAT(text_of(r.err), Catch::Contains("takes no pushes"));
}

SCENARIO_METHOD(fixture,
                "pushed records reach the shard in order and pushes out of order are refused",
                "[actors][feeder]") {
  auto buffer = std::make_shared<replay_buffer>();
  auto out = std::make_shared<received>();
  start(
    out, [buffer] { return buffer; }, 1000, 1'000'000);
  CHECK(ask<caf::ok_atom>(out->feeder, push_atom::value, make_batch(0, 5)).value);
  auto r = ask<caf::ok_atom>(out->feeder, push_atom::value, make_batch(3, 5));
  CHECK(code_of(r.err) == errc::bad_input);
  CHECK_THAT(text_of(r.err), Catch::Contains("increasing sequence-number order"));
  CHECK(ask<caf::ok_atom>(out->feeder, push_atom::value, make_batch(5, 5)).value);
  anon_send(out->feeder, end_atom::value);
  run();
  CHECK(sequences(*out) == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(out->ended);
}

SCENARIO_METHOD(fixture,
                "the feeder says once that its source has nothing now, again after records",
                "[actors][feeder]") {
  auto buffer = std::make_shared<replay_buffer>();
  auto out = std::make_shared<received>();
  start(
    out, [buffer] { return buffer; }, 1000, 1'000'000);
  CHECK(out->idles == 1); // caught up with credit left: the shard is idle, not stuck
  advance(1s);
  CHECK(out->idles == 1); // said once, not on every look
  CHECK(ask<caf::ok_atom>(out->feeder, push_atom::value, make_batch(0, 5)).value);
  CHECK(out->records() == 5);
  CHECK(out->idles == 2); // records went out, then nothing again
  anon_send(out->feeder, end_atom::value);
  run();
  CHECK(out->ended);
  CHECK(out->idles == 2); // an end is not idleness
}

namespace {

// A replayable source that holds what the test gives it and keeps the feeder's wake-up.
struct waking_source final : record_source {
  std::vector<stream_record> ready;
  std::function<void()> wake;

  void rewind(const std::optional<sequence_number>&) override {
  }
  record_batch read(std::size_t max) override {
    const auto n = std::min(max, ready.size());
    std::vector<stream_record> xs(ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(n));
    ready.erase(ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(n));
    return record_batch{std::move(xs)};
  }
  bool at_end() const override {
    return false;
  }
  void on_readable(std::function<void()> f) override {
    wake = std::move(f);
  }
};

} // namespace

SCENARIO_METHOD(fixture, "a source that wakes its feeder has its records sent at once, not polled",
                "[actors][feeder]") {
  auto src = std::make_shared<waking_source>();
  auto out = std::make_shared<received>();
  auto shard = start(
    out, [src] { return src; }, 1000, 1'000'000); // poll_interval 0: the feeder never polls
  REQUIRE(src->wake);
  CHECK(out->idles == 1);
  for (std::uint64_t i = 0; i < 3; ++i)
    src->ready.push_back(shardflow::testing::make_record(i));
  advance(1h);
  CHECK(out->records() == 0); // records there, nobody told: nothing leaves
  src->wake();                // as librdkafka's thread does
  run();
  CHECK(sequences(*out) == std::vector<std::uint64_t>{0, 1, 2});
  CHECK(out->idles == 2);
  src->wake(); // a wake-up that finds nothing is harmless
  run();
  CHECK(out->records() == 3);
  anon_send_exit(shard, caf::exit_reason::user_shutdown);
  run();
  REQUIRE(is_dead(out->feeder));
  out->feeder = caf::actor{}; // the last strong reference: the address is all that is left
  src->ready.push_back(shardflow::testing::make_record(3));
  src->wake(); // the feeder is gone: its weak address wakes nobody
  run();
  CHECK(out->records() == 3);
  CHECK(src->ready.size() == 1);
}

SCENARIO_METHOD(fixture, "a producer waits while the replay buffer is over its push limit",
                "[actors][feeder]") {
  push_limit = 5;
  auto buffer = std::make_shared<replay_buffer>();
  auto out = std::make_shared<received>();
  auto shard = start(
    out, [buffer] { return buffer; }, 1000, 1'000'000);
  auto answers = std::make_shared<int>(0);
  auto feeder = out->feeder;
  spawn_fn([feeder, answers](caf::event_based_actor* self) {
    for (std::uint64_t b = 0; b < 3; ++b)
      self->request(feeder, caf::infinite, push_atom::value, make_batch(b * 5, 5))
        .then([answers](caf::ok_atom) { ++*answers; }, [](caf::error&) {});
  });
  run();
  CHECK(*answers == 1); // the buffer holds 5: the next push waits
  CHECK(buffer->retained() == 5);
  CHECK(out->pressures == 1); // and the shard is asked to checkpoint now, once for the wait
  sequence_number upto;
  upto.base = sequence_base{4};
  anon_send(out->feeder, acked_atom::value, upto); // not from the shard: ignored
  run();
  CHECK(*answers == 1);
  anon_send(shard, acked_atom::value, upto); // the shard's checkpoint covers the first five
  run();
  CHECK(*answers == 2);
  CHECK(buffer->retained() == 5);
  CHECK(out->pressures == 2); // the third push waits now: a new wait, asked again
  upto.base = sequence_base{9};
  anon_send(shard, acked_atom::value, upto);
  run();
  CHECK(*answers == 3);
  CHECK(sequences(*out).size() == 15);
}

SCENARIO_METHOD(fixture,
                "an end is answered once taken, and a feeder that stops first says end again",
                "[actors][feeder]") {
  push_limit = 5;
  auto buffer = std::make_shared<replay_buffer>();
  auto out = std::make_shared<received>();
  auto shard = start(
    out, [buffer] { return buffer; }, 1000, 1'000'000);
  auto feeder = out->feeder;
  auto end_answer = std::make_shared<std::optional<caf::error>>();
  spawn_fn([feeder, end_answer](caf::event_based_actor* self) {
    for (std::uint64_t b = 0; b < 2; ++b) // the second push waits: the buffer holds 5
      self->request(feeder, caf::infinite, push_atom::value, make_batch(b * 5, 5))
        .then([](caf::ok_atom) {}, [](caf::error&) {});
    self->request(feeder, caf::infinite, end_atom::value)
      .then([end_answer](caf::ok_atom) { *end_answer = caf::error{}; },
            [end_answer](caf::error& e) { *end_answer = std::move(e); });
  });
  run();
  CHECK_FALSE(*end_answer); // a push still waits: the end is not taken yet
  CHECK_FALSE(out->ended);
  anon_send_exit(shard, caf::exit_reason::user_shutdown); // the feeder follows its supervisor
  run();
  REQUIRE(*end_answer);
  CHECK(code_of(**end_answer) == errc::restarting); // not ok: the producer must say end again
  CHECK_FALSE(buffer->at_end()); // not closed: the records after the end may still come
}
