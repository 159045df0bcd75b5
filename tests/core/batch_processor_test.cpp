#include <shardflow/core/batch_processor.hpp>

#include <catch2/catch.hpp>

#include "tests/support/thrown_code.hpp"

#include "tests/support/recording_flusher.hpp"
#include <shardflow/core/error.hpp>

using namespace shardflow;
using shardflow::testing::thrown_code;
using namespace std::chrono_literals;
using shardflow::testing::flusher_script;
using shardflow::testing::make_record;
using shardflow::testing::make_sub_record;
using shardflow::testing::recording_flusher;

namespace {

using time_point = batch_processor::time_point;

const time_point t0 = time_point{} + 1h;

record_batch records(std::uint64_t first, std::uint64_t count) {
  std::vector<stream_record> result;
  for (auto i = first; i < first + count; ++i)
    result.push_back(make_record(i));
  return record_batch{std::move(result)};
}

record_batch batch(std::vector<stream_record> xs) {
  return record_batch{std::move(xs)};
}

struct fixture {
  std::shared_ptr<flusher_script> script = std::make_shared<flusher_script>();
  batch_config cfg;
  std::unique_ptr<batch_processor> proc;

  fixture() {
    cfg.flush_interval = 1s;
    cfg.checkpoint_interval = 0s;
  }

  batch_processor& make() {
    proc = std::make_unique<batch_processor>("shard-1", std::make_unique<recording_flusher>(script),
                                             cfg, t0);
    return *proc;
  }
};

std::uint64_t position(const std::optional<checkpoint>& cp) {
  REQUIRE(cp.has_value());
  REQUIRE(cp->position.has_value());
  return *cp->position->base.to_uint64();
}

} // namespace

SCENARIO_METHOD(fixture,
                "checkpoint_now flushes what is held and checkpoints, whatever the intervals",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1h;
  cfg.checkpoint_interval = 1h;
  auto& p = make();
  CHECK_FALSE(p.process(records(0, 5), t0).has_value()); // within both intervals: nothing
  CHECK(position(p.checkpoint_now(t0 + 1ms)) == 4);
  CHECK(p.stats().flushes == 1);
  CHECK(p.stats().outstanding == 0);
  CHECK_FALSE(p.checkpoint_now(t0 + 2ms).has_value()); // nothing new: no checkpoint, no flush
  CHECK(p.stats().flushes == 1);
  GIVEN("a record whose write is still in flight") {
    script->hold = {6};
    p.process(records(5, 3), t0 + 3ms);
    THEN("the checkpoint stops before it") {
      CHECK(position(p.checkpoint_now(t0 + 4ms)) == 5);
    }
  }
}

SCENARIO_METHOD(fixture, "a checkpoint waits for a gap in the flushed tokens to close",
                "[actors][batch_processor]") {
  // erlmld's checkpointing_test through the processor: tokens 0, 1, 3 come back first.
  auto& p = make();
  CHECK_FALSE(p.process(records(100, 4), t0).has_value()); // nothing durable yet
  script->use_next_flush = true;
  script->next_flush = {0, 1, 3};
  CHECK(position(p.flush(flush_mode::partial, t0)) == 101);
  script->use_next_flush = true;
  script->next_flush = {2};
  CHECK(position(p.flush(flush_mode::partial, t0)) == 103);
  CHECK(p.stats().checkpoints == 2);
  CHECK(p.stats().outstanding == 0);
}

SCENARIO_METHOD(fixture,
                "sub-records of an aggregate hold the checkpoint until the aggregate is done",
                "[actors][batch_processor]") {
  // erlmld's checkpointing_subrecord_test through the processor.
  GIVEN("sub-sequence checkpoints disabled") {
    auto& p = make();
    p.process(batch({make_sub_record(7, 0, 3), make_sub_record(7, 1, 3), make_sub_record(7, 2, 3),
                     make_record(8)}),
              t0);
    script->use_next_flush = true;
    script->next_flush = {0, 2};
    CHECK_FALSE(p.flush(flush_mode::partial, t0).has_value());
    script->use_next_flush = true;
    script->next_flush = {1};
    auto cp = p.flush(flush_mode::partial, t0);
    REQUIRE(cp);
    CHECK(cp->position->user_sub == 2);
    CHECK(position(p.flush(flush_mode::partial, t0)) == 8);
  }
  GIVEN("sub-sequence checkpoints enabled") {
    cfg.enable_subsequence_checkpoints = true;
    auto& p = make();
    p.process(batch({make_sub_record(7, 0, 3), make_sub_record(7, 1, 3), make_sub_record(7, 2, 3)}),
              t0);
    script->use_next_flush = true;
    script->next_flush = {0, 2};
    auto cp = p.flush(flush_mode::partial, t0);
    REQUIRE(cp);
    CHECK(cp->position->user_sub == 0);
    script->use_next_flush = true;
    script->next_flush = {1};
    cp = p.flush(flush_mode::partial, t0);
    REQUIRE(cp);
    CHECK(cp->position->user_sub == 2);
  }
}

SCENARIO_METHOD(fixture, "the watchdog fires only after a whole timeout without records",
                "[actors][batch_processor]") {
  // erlmld's watchdog_test on simulated time: 200 ms timeout, activity at 100 ms re-arms it.
  cfg.watchdog_timeout = 200ms;
  auto& p = make();
  CHECK_FALSE(p.watchdog_expired(t0 + 100ms));
  p.process({}, t0 + 100ms);
  CHECK_FALSE(p.watchdog_expired(t0 + 250ms));
  p.heartbeat(t0 + 250ms); // heartbeats are the shard's own ticks, not activity
  CHECK_FALSE(p.watchdog_expired(t0 + 299ms));
  CHECK(p.watchdog_expired(t0 + 300ms));
  AND_WHEN("the watchdog is disabled") {
    cfg.watchdog_timeout = 0ms;
    auto& q = make();
    CHECK_FALSE(q.watchdog_expired(t0 + 24h));
  }
}

SCENARIO_METHOD(fixture,
                "the watchdog: a shard waiting for input is idle, one holding records "
                "that make no progress is stuck",
                "[actors][batch_processor]") {
  cfg.watchdog_timeout = 200ms;
  script->only_heartbeat = true; // records become durable only when the test says so
  auto& p = make();
  p.idle(t0 + 10ms); // the source has nothing now: waiting for input is not being stuck
  CHECK_FALSE(p.watchdog_expired(t0 + 1h));
  p.process(records(0, 2), t0 + 1h); // records arrive and the flusher holds them
  p.idle(t0 + 1h);                   // nothing more comes, but two records are not durable
  CHECK_FALSE(p.watchdog_expired(t0 + 1h + 199ms));
  CHECK(p.watchdog_expired(t0 + 1h + 200ms)); // records available, no progress: stuck
  script->next_heartbeat_all = true;
  p.heartbeat(t0 + 1h + 250ms); // tokens came back: progress, and nothing is held any more
  CHECK_FALSE(p.watchdog_expired(t0 + 2h));
}

SCENARIO_METHOD(fixture, "a full flusher is flushed and offered the same record again",
                "[actors][batch_processor]") {
  script->capacity = 2;
  cfg.flush_interval = 1h;
  auto& p = make();
  p.process(records(0, 5), t0);
  CHECK(script->flushes == std::vector<flush_mode>{flush_mode::partial, flush_mode::partial});
  CHECK(script->added == std::vector<flush_token>{0, 1, 2, 3, 4});
  CHECK(script->added_data.back() == "r4");
  CHECK(p.stats().records == 5);
  CHECK(p.stats().flushed == 4);
  AND_THEN("the checkpoint is at the last record of the last flush") {
    CHECK(p.stats().last_checkpoint->base == sequence_base{3});
  }
}

SCENARIO_METHOD(fixture, "a partial flush that frees no room is followed by a full flush",
                "[actors][batch_processor]") {
  script->capacity = 2;
  script->hold = {0, 1}; // a partial flush keeps both records "in flight"
  cfg.flush_interval = 1h;
  auto& p = make();
  p.process(records(0, 3), t0);
  CHECK(script->flushes == std::vector<flush_mode>{flush_mode::partial, flush_mode::full});
  CHECK(script->added == std::vector<flush_token>{0, 1, 2});
}

SCENARIO_METHOD(fixture, "full on an empty batch is an error, not a hang",
                "[actors][batch_processor]") {
  script->capacity = 0;
  auto& p = make();
  CHECK(thrown_code([&] { p.process(records(0, 1), t0); }) == errc::record_never_fits);
  THEN("the processor stays failed") {
    CHECK(thrown_code([&] { p.heartbeat(t0); }) == errc::processor_stopped);
  }
}

SCENARIO_METHOD(fixture, "flusher contract violations are reported with the shard and the token",
                "[actors][batch_processor]") {
  auto& p = make();
  p.process(records(0, 3), t0);
  WHEN("a token comes back twice") {
    script->use_next_flush = true;
    script->next_flush = {1, 1};
    CHECK_THROWS_WITH(p.flush(flush_mode::partial, t0),
                      Catch::Contains("shard-1") && Catch::Contains("token 1 twice"));
  }
  WHEN("a token that was never handed out comes back") {
    script->next_heartbeat = {9};
    CHECK(thrown_code([&] { p.heartbeat(t0); }) == errc::unknown_token);
  }
  WHEN("a full flush leaves records outstanding") {
    script->hold = {2};
    script->full_flush_is_partial = true;
    CHECK(thrown_code([&] { p.shutdown(shutdown_reason::terminate, t0); })
          == errc::incomplete_full_flush);
  }
}

SCENARIO_METHOD(fixture, "a flusher exception fails the processor and keeps its text",
                "[actors][batch_processor]") {
  auto& p = make();
  WHEN("add throws") {
    script->fail_add = true;
    CHECK_THROWS_WITH(p.process(records(0, 1), t0),
                      Catch::Contains("add") && Catch::Contains("injected add failure"));
  }
  WHEN("flush throws") {
    script->fail_flush = true;
    p.process(records(0, 1), t0);
    CHECK(thrown_code([&] { p.flush(flush_mode::partial, t0); }) == errc::flusher_failed);
  }
  WHEN("heartbeat throws") {
    script->fail_heartbeat = true;
    CHECK_THROWS_WITH(p.heartbeat(t0), Catch::Contains("injected heartbeat failure"));
  }
  CHECK(thrown_code([&] { p.process({}, t0); }) == errc::processor_stopped);
}

SCENARIO_METHOD(fixture, "the flush interval is checked at the end of each batch",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1s;
  auto& p = make();
  p.process(records(0, 10), t0 + 500ms);
  CHECK(script->flushes.empty());
  p.process(records(10, 10), t0 + 1s);
  CHECK(script->flushes.size() == 1);
  CHECK(p.stats().flushed == 20);
  p.process({}, t0 + 1500ms);
  CHECK(script->flushes.size() == 1);
  WHEN("nothing is outstanding") {
    p.process({}, t0 + 10s);
    THEN("no empty flush is made") {
      CHECK(script->flushes.size() == 1);
    }
  }
}

SCENARIO_METHOD(fixture, "the checkpoint interval limits how often checkpoints are returned",
                "[actors][batch_processor]") {
  cfg.flush_interval = 0s;
  cfg.checkpoint_interval = 10s;
  auto& p = make();
  CHECK_FALSE(p.process(records(0, 5), t0 + 1s).has_value()); // flushed, but too early
  CHECK(position(p.process(records(5, 5), t0 + 10s)) == 9);
  CHECK_FALSE(p.process(records(10, 5), t0 + 15s).has_value());
  CHECK(position(p.process({}, t0 + 20s)) == 14);
  CHECK_FALSE(p.process({}, t0 + 40s).has_value()); // due, but it would not move
  CHECK(p.stats().checkpoints == 2);
}

SCENARIO_METHOD(fixture, "flush and checkpoint intervals of zero checkpoint once per batch",
                "[actors][batch_processor]") {
  cfg.flush_interval = 0s;
  cfg.checkpoint_interval = 0s;
  auto& p = make();
  CHECK(position(p.process(records(0, 500), t0)) == 499);
  CHECK(position(p.process(records(500, 500), t0)) == 999);
  CHECK_FALSE(p.process({}, t0).has_value());
  CHECK(p.stats().checkpoints == 2);
  CHECK(script->flushes.size() == 2);
}

SCENARIO_METHOD(fixture, "heartbeat tokens let a quiet shard checkpoint",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1h;
  script->hold = {0, 1, 2};
  auto& p = make();
  p.process(records(0, 3), t0);
  CHECK_FALSE(p.heartbeat(t0 + 1s).has_value());
  script->next_heartbeat = {0, 1};
  CHECK(position(p.heartbeat(t0 + 2s)) == 1);
  CHECK(p.stats().heartbeat_flushes == 1);
  CHECK(script->flushes.empty());
}

SCENARIO_METHOD(fixture, "a heartbeat flushes a quiet shard once the flush interval has passed",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1s;
  auto& p = make();
  p.process(records(0, 3), t0);
  CHECK_FALSE(p.heartbeat(t0 + 500ms).has_value());
  CHECK(position(p.heartbeat(t0 + 1s)) == 2);
}

SCENARIO_METHOD(fixture,
                "next_due says when the intervals act on a quiet shard, and tick acts then without "
                "the flusher's heartbeat",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1s;
  cfg.checkpoint_interval = 3s;
  auto& p = make();
  CHECK_FALSE(p.next_due()); // nothing held: nothing to time
  p.process(records(0, 3), t0 + 100ms);
  REQUIRE(p.next_due());
  CHECK(*p.next_due() == t0 + 1s); // the flush interval, from the processor's start
  CHECK_FALSE(p.tick(t0 + 999ms).has_value());
  CHECK(script->flushes.empty());
  CHECK_FALSE(p.tick(t0 + 1s).has_value()); // flushed; the checkpoint interval has not passed
  CHECK(script->flushes.size() == 1);
  REQUIRE(p.next_due());
  CHECK(*p.next_due() == t0 + 3s); // now the checkpoint would move
  CHECK(position(p.tick(t0 + 3s)) == 2);
  CHECK_FALSE(p.next_due()); // done: nothing held, the checkpoint would not move
  CHECK(p.stats().heartbeat_flushes == 0);
}

SCENARIO_METHOD(fixture, "ignored records do not hold the checkpoint back",
                "[actors][batch_processor]") {
  script->ignore_keys = {"skip"};
  cfg.flush_interval = 0s;
  auto& p = make();
  p.process(batch({make_record(0), make_record(1, "skip"), make_record(2, "skip")}), t0);
  CHECK(p.stats().ignored == 2);
  CHECK(p.stats().last_checkpoint->base == sequence_base{2});
  WHEN("a batch has only ignored records") {
    CHECK(position(p.process(batch({make_record(3, "skip")}), t0)) == 3);
    CHECK(script->flushes.size() == 1);
  }
}

SCENARIO_METHOD(fixture, "terminate flushes fully and checkpoints at the last record",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1h;
  cfg.checkpoint_interval = 1h;
  auto& p = make();
  p.process(records(0, 7), t0);
  CHECK(position(p.shutdown(shutdown_reason::terminate, t0)) == 6);
  CHECK(script->flushes == std::vector<flush_mode>{flush_mode::full});
  CHECK(thrown_code([&] { p.process({}, t0); }) == errc::processor_stopped);
}

SCENARIO_METHOD(fixture, "terminate with nothing new returns the empty checkpoint",
                "[actors][batch_processor]") {
  auto& p = make();
  auto cp = p.shutdown(shutdown_reason::terminate, t0);
  REQUIRE(cp.has_value());
  CHECK_FALSE(cp->position.has_value());
  CHECK(to_string(*cp) == "latest");
}

SCENARIO_METHOD(fixture, "a requested shutdown checkpoints at the last durable record",
                "[actors][batch_processor]") {
  cfg.flush_interval = 1h;
  cfg.checkpoint_interval = 1h;
  auto& p = make();
  p.process(records(0, 4), t0);
  CHECK(position(p.shutdown(shutdown_reason::requested, t0)) == 3);
  AND_WHEN("nothing moved since the last checkpoint") {
    auto& q = make();
    CHECK_FALSE(q.shutdown(shutdown_reason::requested, t0).has_value());
  }
}

SCENARIO_METHOD(fixture, "a zombie shutdown neither flushes nor checkpoints",
                "[actors][batch_processor]") {
  auto& p = make();
  p.process(records(0, 4), t0);
  CHECK_FALSE(p.shutdown(shutdown_reason::zombie, t0).has_value());
  CHECK(script->flushes.empty());
}

SCENARIO("a processor without a flusher is refused", "[actors][batch_processor]") {
  CHECK_THROWS_WITH(batch_processor("s", nullptr, batch_config{}, t0),
                    Catch::Contains("no flusher"));
}
