// Tests of the runtime (actors/runtime.hpp): outcomes a host can tell apart, errors that name the
// problem, and the blocking facade on a real scheduler (waits on observable state, with deadlines).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include "tests/support/generator_source.hpp"
#include "tests/support/threaded_system.hpp"

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/flusher.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

// What the flushers of a test do: fail on every flush, fail once on one record, or hold every
// record until the gate opens.
struct flusher_plan {
  bool fail = false;
  std::string fail_once_on;
  bool gate_open = true;
  bool fail_full_once = false; // the first flush(full) throws (a final flush at the shard's end)
  int made = 0;                // flushers made (one per shard incarnation)
};

// Makes every record durable on each flush, unless its plan says otherwise.
class test_flusher final : public flusher {
public:
  explicit test_flusher(std::shared_ptr<flusher_plan> plan) : plan_(std::move(plan)) {
    // nop
  }

  explicit test_flusher(bool fail) : plan_(std::make_shared<flusher_plan>()) {
    plan_->fail = fail;
  }

  add_result add(const stream_record& x, flush_token t) override {
    if (!plan_->fail_once_on.empty() && x.data == plan_->fail_once_on) {
      plan_->fail_once_on.clear();
      throw std::runtime_error("this flusher fails once on " + x.data);
    }
    pending_.push_back(t);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode m) override {
    if (m == flush_mode::full && plan_->fail_full_once) {
      plan_->fail_full_once = false;
      throw std::runtime_error("final flush fails once");
    }
    if (plan_->fail)
      throw std::runtime_error("this flusher always fails");
    if (!plan_->gate_open)
      return {};
    return std::exchange(pending_, {});
  }

  std::vector<flush_token> heartbeat() override {
    if (plan_->fail || !plan_->gate_open)
      return {};
    return std::exchange(pending_, {});
  }

private:
  std::shared_ptr<flusher_plan> plan_;
  std::vector<flush_token> pending_;
};

using testing::threaded_system;

shard_group_config group(const std::string& id, bool finite, bool failing = false) {
  shard_group_config g;
  g.shard.id = id;
  g.shard.make_flusher = [failing](const shard_id&) {
    return std::make_unique<test_flusher>(failing);
  };
  g.shard.batch.checkpoint_interval = 10ms;
  g.finite = finite;
  g.intensity = 1;
  g.backoff = {}; // restarts at once: the test does not wait out a backoff
  g.report = [](const std::string&) {};
  return g;
}

// A group whose flushers all follow `plan` (and count themselves in plan->made).
shard_group_config group(const std::string& id, bool finite,
                         const std::shared_ptr<flusher_plan>& plan) {
  auto g = group(id, finite);
  g.shard.make_flusher = [plan](const shard_id&) {
    ++plan->made;
    return std::make_unique<test_flusher>(plan);
  };
  return g;
}

record_batch records(std::uint64_t first, std::uint64_t n) {
  std::vector<stream_record> xs(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    xs[i].partition_key = "k";
    xs[i].data = "record " + std::to_string(first + i);
    xs[i].sequence.base = sequence_base{first + i};
  }
  return record_batch{std::move(xs)};
}

// Waits (bounded by `deadline`) until `done()` holds; returns whether it did.
template <class F>
bool eventually(F done, std::chrono::steady_clock::duration deadline = 30s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

shard_outcome outcome_of(const runtime& rt, const shard_id& id) {
  return rt.meters(id)->outcome.load(std::memory_order_relaxed);
}

// -- on the deterministic scheduler, through the front actor --------------------------------------

// The answer of a request that may come late (backpressure): filled in when it arrives.
template <class T>
struct late_answer {
  std::optional<T> value;
  caf::error err;

  bool done() const {
    return value.has_value() || static_cast<bool>(err);
  }
};

template <class T, class... Ts>
std::shared_ptr<late_answer<T>>
ask_late(testing::deterministic_fixture& f, const caf::actor& dst, Ts... xs) {
  auto out = std::make_shared<late_answer<T>>();
  f.spawn_fn([=](caf::event_based_actor* self) {
    self->request(dst, caf::infinite, xs...)
      .then([out](T& x) { out->value = std::move(x); },
            [out](caf::error& e) { out->err = std::move(e); });
  });
  f.run();
  return out;
}

// Advances the simulated clock in 1 ms steps until `done()` or `limit` passed.
template <class F>
bool advance_until(testing::deterministic_fixture& f, F done, caf::timespan limit = 10s) {
  for (caf::timespan t{0}; t < limit && !done(); t += 1ms)
    f.advance(1ms);
  return done();
}

runtime_config quiet(bool finite) {
  runtime_config rcfg;
  rcfg.finite = finite;
  rcfg.log = [](log_level, std::string_view) {};
  return rcfg;
}

// The same with restart_groups: the root starts a group that gave up again (OTP's permanent
// children), for the tests of what happens between a group's give-up and its next incarnation.
runtime_config restarting(bool finite) {
  auto rcfg = quiet(finite);
  rcfg.restart_groups = true;
  return rcfg;
}

} // namespace

// Starts `g` (shard "s") with a push limit of 10, pushes 20 records (taken: the buffer was empty)
// and then 5 more, which wait; returns the answer to those.
std::shared_ptr<late_answer<caf::ok_atom>>
over_the_limit(testing::deterministic_fixture& f, const caf::actor& front, shard_group_config g) {
  g.feeder.push_limit = 10;
  auto started = ask_late<caf::ok_atom>(f, front, start_child_atom::value, g);
  REQUIRE(started->value);
  auto first = ask_late<caf::ok_atom>(f, front, push_atom::value, shard_id{"s"}, records(0, 20));
  CHECK(first->value);
  return ask_late<caf::ok_atom>(f, front, push_atom::value, shard_id{"s"}, records(20, 5));
}

TEST_CASE("front actor: a push over the limit is answered once the shard has caught up") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(false));
  REQUIRE(front);
  auto plan = std::make_shared<flusher_plan>();
  plan->gate_open = false;
  auto g = group("s", false, plan);
  g.shard.heartbeat_interval = 10ms;
  g.shard.batch.checkpoint_interval = 0ms;
  auto second = over_the_limit(f, *front, g);
  f.advance(200ms);
  CHECK_FALSE(second->done()); // 20 records wait for a checkpoint: the producer waits too
  plan->gate_open = true;
  CHECK(advance_until(f, [&] { return second->done(); }));
  CHECK(second->value);
  auto ended = ask_late<runtime_outcome>(f, *front, shutdown_atom::value);
  REQUIRE(advance_until(f, [&] { return ended->done(); }));
  REQUIRE(ended->value);
  CHECK(ended->value->clean());
  REQUIRE(ended->value->shards.size() == 1);
  CHECK(ended->value->shards[0].outcome == shard_outcome::stopped);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a push over the limit has the shard checkpoint at once, not at its "
          "interval") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(false));
  REQUIRE(front);
  auto g = group("s", false);
  g.shard.heartbeat_interval = 1h; // nothing on time: only the wait itself can bring the checkpoint
  g.shard.batch.flush_interval = 1h;
  g.shard.batch.checkpoint_interval = 1h;
  auto second = over_the_limit(f, *front, g);
  // The wait asks the shard to flush and checkpoint what it holds; the checkpoint releases the
  // buffer, and the push is in. (Before, it waited for the checkpoint interval: 5 s by default.)
  CHECK(advance_until(f, [&] { return second->done(); }, 100ms));
  CHECK(second->value);
  auto stats = ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{"s"});
  REQUIRE(stats->value);
  REQUIRE(stats->value->last_acked);
  CHECK(*stats->value->last_acked->base.to_uint64() == 19); // all of the first push, flushed now
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: await answers gave_up with the reason for a shard that keeps failing") {
  testing::deterministic_fixture f;
  auto rcfg = restarting(true);
  rcfg.intensity = 1;
  auto lines = std::make_shared<std::vector<std::pair<log_level, std::string>>>();
  rcfg.log = [lines](log_level level, std::string_view text) { // one thread: the test's
    lines->emplace_back(level, std::string{text});
  };
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto g = group("doomed", true, true);
  g.report = {}; // the group reports through the runtime's log sink
  auto started = ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g);
  REQUIRE(started->value);
  CHECK(
    ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"doomed"}, records(0, 10))->value);
  CHECK(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"doomed"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(f, [&] { return out->done(); }));
  REQUIRE(out->value);
  CHECK(out->value->ended);
  CHECK_FALSE(out->value->clean());
  REQUIRE(out->value->shards.size() == 1);
  CHECK(out->value->shards[0].outcome == shard_outcome::gave_up);
  CHECK_THAT(out->value->shards[0].reason, Catch::Contains("this flusher always fails"));
  auto logged = [&](log_level level, const std::string& what) {
    return std::any_of(lines->begin(), lines->end(), [&](auto& x) {
      return x.first == level && x.second.find(what) != std::string::npos;
    });
  };
  // One line per event, the shard named once, each code once, no library prefix inside.
  CHECK(logged(log_level::warning, "doomed: failed (flusher_failed): the flusher failed in "
                                   "flush(full): this flusher always fails"));
  CHECK(logged(log_level::warning, "doomed: gave up: more than 1 restart in 10 s (last: "
                                   "flusher_failed: the flusher failed in flush(full): this "
                                   "flusher always fails)"));
  CHECK(out->value->shards[0].reason
        == "more than 1 restart in 10 s (last: flusher_failed: the flusher failed in flush(full): "
           "this flusher always fails)");
  for (auto& [level, line] : *lines) {
    INFO(line);
    CHECK(line.find("shardflow:") == std::string::npos);
    CHECK(line.find("shard doomed") == std::string::npos);
    CHECK(line.find("child shard") == std::string::npos);
  }
  CHECK(logged(log_level::error, "the runtime ended"));
  auto late = ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{"doomed"});
  CHECK(code_of(late->err) == errc::runtime_ended);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: pushes reach the new feeder after the shard's group restarted") {
  testing::deterministic_fixture f;
  auto rcfg = restarting(true);
  auto store = std::make_shared<memory_checkpoint_store>();
  rcfg.sink = spawn_checkpoint_sink(f.sys, store);
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto plan = std::make_shared<flusher_plan>();
  plan->fail_once_on = "record 15";
  auto g = group("s", true, plan);
  g.intensity = 0; // the first crash ends the group; the root starts a new one (a new feeder)
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  std::uint64_t next = 0;
  for (int tries = 0; next < 100 && tries < 1000; ++tries) {
    auto r = ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(next, 10));
    advance_until(f, [&] { return r->done(); });
    if (r->value) {
      next += 10;
    } else {
      REQUIRE(code_of(r->err) == errc::restarting);
      f.advance(10ms);
    }
  }
  CHECK(next == 100); // a registry that kept the dead feeder would answer restarting for ever
  CHECK(plan->fail_once_on.empty()); // the flusher did fail once
  CHECK(plan->made == 2);            // and a second group ran the shard
  REQUIRE(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"s"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(f, [&] { return out->done(); }));
  REQUIRE(out->value);
  CHECK(out->value->clean());
  CHECK(out->value->shards[0].outcome == shard_outcome::ended);
  auto row = store->peek("s");
  REQUIRE(row);
  CHECK(row->ended);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rcfg.sink, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: requests about unknown shards and after the end name the problem") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(false));
  REQUIRE(front);
  CHECK(code_of(ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{"x"})->err)
        == errc::unknown_shard);
  auto g = group("s", false);
  g.shard.make_flusher = {};
  CHECK(code_of(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->err)
        == errc::bad_child_spec);
  // A finite shard in a runtime that is not: refused, in the runtime's words (not the root
  // supervisor's "significant but auto_shutdown is never").
  auto finite = ask_late<caf::ok_atom>(f, *front, start_child_atom::value, group("f", true));
  CHECK(code_of(finite->err) == errc::bad_child_spec);
  CHECK_THAT(f.sys.render(finite->err),
             Catch::Contains("shard f is finite (shard_group_config::finite) but the runtime is "
                             "not (runtime_config::finite)"));
  CHECK(code_of(ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{"f"})->err)
        == errc::unknown_shard);
  auto ended = ask_late<runtime_outcome>(f, *front, shutdown_atom::value);
  REQUIRE(advance_until(f, [&] { return ended->done(); }));
  CHECK(ended->value->clean());
  CHECK(
    code_of(ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 1))->err)
    == errc::runtime_ended);
  CHECK(code_of(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, group("t", false))->err)
        == errc::runtime_ended);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a shard waiting to be restarted answers restarting") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(false));
  REQUIRE(front);
  auto g = group("s", false, true);
  g.intensity = 5;
  g.period = std::chrono::seconds(60);
  g.backoff.min = std::chrono::seconds(5);
  g.backoff.max = std::chrono::seconds(5);
  g.shard.heartbeat_interval = 10ms;
  g.shard.batch.flush_interval = 10ms;
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 5))->value);
  f.advance(100ms); // the flush fails: the shard waits 5 s for its restart
  auto st = ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{"s"});
  CHECK(code_of(st->err) == errc::restarting);
  CHECK_THAT(text_of(st->err), Catch::Contains("shard s"));
  auto ended = ask_late<runtime_outcome>(f, *front, shutdown_atom::value);
  REQUIRE(advance_until(f, [&] { return ended->done(); }));
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a finite shard between restarts when the root gives up is not ended") {
  testing::deterministic_fixture f;
  auto rcfg = restarting(true);
  rcfg.intensity = 0; // the first group that gives up ends the runtime
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto waiting = group("waiting", true, true);
  waiting.intensity = 5;
  waiting.period = std::chrono::seconds(60);
  waiting.backoff.min = std::chrono::seconds(5);
  waiting.backoff.max = std::chrono::seconds(5);
  waiting.shard.batch.flush_interval = 10ms;
  waiting.shard.heartbeat_interval = 10ms;
  auto doomed = group("doomed", true, true);
  doomed.intensity = 0;
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, waiting)->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, doomed)->value);
  REQUIRE(
    ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"waiting"}, records(0, 5))->value);
  f.advance(100ms); // its flush fails: the shard waits 5 s for its restart
  REQUIRE(
    ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"doomed"}, records(0, 5))->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"doomed"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(
    f, [&] { return out->done(); }, 4s)); // before the 5 s restart
  REQUIRE(out->value);
  CHECK_FALSE(out->value->clean());
  REQUIRE(out->value->shards.size() == 2);
  CHECK(out->value->shards[0].id == "waiting");
  CHECK(out->value->shards[0].outcome != shard_outcome::ended); // its end was never checkpointed
  CHECK(out->value->shards[1].outcome == shard_outcome::gave_up);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: requests while the runtime shuts down say shutting_down") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(false));
  REQUIRE(front);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, group("s", false))->value);
  auto ended = std::make_shared<late_answer<runtime_outcome>>();
  auto pushed = std::make_shared<late_answer<caf::ok_atom>>();
  auto dst = *front;
  f.spawn_fn([=](caf::event_based_actor* self) {
    self->request(dst, caf::infinite, shutdown_atom::value)
      .then([ended](runtime_outcome& x) { ended->value = std::move(x); },
            [ended](caf::error& e) { ended->err = std::move(e); });
    self->request(dst, caf::infinite, push_atom::value, shard_id{"s"}, records(0, 1))
      .then([pushed](caf::ok_atom x) { pushed->value = x; },
            [pushed](caf::error& e) { pushed->err = std::move(e); });
  });
  REQUIRE(advance_until(f, [&] { return ended->done() && pushed->done(); }));
  CHECK(code_of(pushed->err) == errc::shutting_down);
  REQUIRE(ended->value);
  CHECK(ended->value->clean());
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: an exit shuts the tree down in order before the front actor ends") {
  testing::deterministic_fixture f;
  auto rcfg = quiet(false);
  auto store = std::make_shared<memory_checkpoint_store>();
  rcfg.sink = spawn_checkpoint_sink(f.sys, store);
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto g = group("s", false);
  g.shard.batch.checkpoint_interval = std::chrono::hours(1); // only the final checkpoint
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  REQUIRE(
    ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 10))->value);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
  REQUIRE(advance_until(f, [&] { return f.is_dead(*front); }));
  auto row = store->peek("s");
  REQUIRE(row);
  REQUIRE(row->position);
  CHECK(row->position->base == sequence_base{9});
  caf::anon_send_exit(rcfg.sink, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a group restarted just before a clean shutdown is stopped, not gave_up") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, restarting(false));
  REQUIRE(front);
  auto plan = std::make_shared<flusher_plan>();
  plan->fail_once_on = "record 3";
  auto g = group("s", false, plan);
  g.intensity = 0; // the crash ends the group; the root starts a new one at once
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 5))->value);
  REQUIRE(advance_until(
    f, [&] { return plan->made == 2; }, 50ms));
  auto ended = ask_late<runtime_outcome>(f, *front, shutdown_atom::value);
  REQUIRE(advance_until(f, [&] { return ended->done(); }));
  REQUIRE(ended->value);
  CHECK(ended->value->clean());
  CHECK(ended->value->shards[0].outcome == shard_outcome::stopped);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

// -- the blocking facade on a real scheduler -----------------------------------------------------

TEST_CASE("a finite shard that gives up is reported as gave_up, and the runtime not clean") {
  threaded_system ts;
  runtime_config rcfg = quiet(true);
  rcfg.intensity = 1;
  auto rt = runtime::start(ts.sys, rcfg);
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("doomed", true, true)));
  REQUIRE_FALSE((*rt)->push("doomed", records(0, 10)));
  REQUIRE_FALSE((*rt)->end("doomed"));
  auto out = (*rt)->await(30s);
  REQUIRE(out.ended);
  CHECK_FALSE(out.clean());
  CHECK_FALSE((*rt)->ended_cleanly());
  REQUIRE(out.shards.size() == 1);
  CHECK(out.shards[0].id == "doomed");
  CHECK(out.shards[0].outcome == shard_outcome::gave_up);
  CHECK_THAT(out.shards[0].reason, Catch::Contains("this flusher always fails"));
  CHECK(outcome_of(**rt, "doomed") == shard_outcome::gave_up);
  CHECK(code_of((*rt)->shutdown()) != errc::none); // not clean: shutdown says so
}

TEST_CASE("shutdown of a healthy runtime returns no error, twice, and the shard is stopped") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, quiet(false));
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  REQUIRE_FALSE((*rt)->push("s", records(0, 10)));
  CHECK_FALSE((*rt)->shutdown());
  CHECK_FALSE((*rt)->shutdown());
  auto out = (*rt)->await(1s);
  CHECK(out.ended);
  CHECK(out.clean());
  CHECK((*rt)->ended_cleanly());
  REQUIRE(out.shards.size() == 1);
  CHECK(out.shards[0].outcome == shard_outcome::stopped);
  CHECK(out.shards[0].reason.empty());
}

TEST_CASE("requests to an ended runtime say runtime_ended") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, quiet(false));
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  CHECK_FALSE((*rt)->shutdown());
  CHECK(code_of((*rt)->stats("s").error()) == errc::runtime_ended);
  CHECK(code_of((*rt)->push("s", records(0, 1))) == errc::runtime_ended);
  CHECK(code_of((*rt)->stop_shard("s")) == errc::runtime_ended);
  CHECK(code_of((*rt)->end("s")) == errc::runtime_ended);
  CHECK(code_of((*rt)->start_shard(group("t", false))) == errc::runtime_ended);
}

TEST_CASE("requests about a shard the runtime does not have say unknown_shard") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, quiet(false));
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  CHECK(code_of((*rt)->stats("nope").error()) == errc::unknown_shard);
  CHECK(code_of((*rt)->push("nope", records(0, 1))) == errc::unknown_shard);
  CHECK(code_of((*rt)->stop_shard("nope")) == errc::unknown_shard);
  CHECK(code_of((*rt)->end("nope")) == errc::unknown_shard);
  CHECK((*rt)->meters("nope") == nullptr);
  CHECK_FALSE((*rt)->shutdown());
}

TEST_CASE("an ended or stopped shard takes no pushes; outcomes and meters per shard") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, restarting(true));
  REQUIRE(rt);
  for (auto id : {"a", "b", "c"})
    REQUIRE_FALSE((*rt)->start_shard(group(id, true)));
  CHECK((*rt)->shards() == std::vector<shard_id>{"a", "b", "c"});
  REQUIRE_FALSE((*rt)->push("a", records(0, 10)));
  REQUIRE_FALSE((*rt)->end("a"));
  REQUIRE(eventually([&] { return outcome_of(**rt, "a") != shard_outcome::running; }));
  CHECK(outcome_of(**rt, "a") == shard_outcome::ended);
  CHECK(code_of((*rt)->push("a", records(10, 1))) == errc::shard_ended);
  CHECK(code_of((*rt)->stats("a").error()) == errc::shard_ended);
  // The root still has a's spec: already_present once its group is down (already_started while
  // the group is still on its way out after the end).
  CHECK(eventually(
    [&] { return code_of((*rt)->start_shard(group("a", true))) == errc::already_present; }));
  CHECK(outcome_of(**rt, "a") == shard_outcome::ended);
  CHECK((*rt)->shards() == std::vector<shard_id>{"a", "b", "c"});
  REQUIRE_FALSE((*rt)->push("b", records(0, 5)));
  REQUIRE_FALSE((*rt)->stop_shard("b"));
  CHECK(outcome_of(**rt, "b") == shard_outcome::stopped);
  CHECK(code_of((*rt)->push("b", records(5, 1))) == errc::shard_ended);
  REQUIRE_FALSE((*rt)->push("c", records(0, 7)));
  auto st = (*rt)->stats("c");
  REQUIRE(st);
  CHECK(st->id == "c");
  REQUIRE_FALSE((*rt)->end("c"));
  auto out = (*rt)->await(30s);
  REQUIRE(out.ended);
  CHECK(out.clean());
  REQUIRE(out.shards.size() == 3);
  CHECK(out.shards[0].outcome == shard_outcome::ended);
  CHECK(out.shards[1].outcome == shard_outcome::stopped);
  CHECK(out.shards[2].outcome == shard_outcome::ended);
  CHECK(code_of((*rt)->start_shard(group("a", true))) == errc::runtime_ended);
  CHECK((*rt)->shards() == std::vector<shard_id>{"a", "b", "c"});
  auto m = (*rt)->meters("c");
  REQUIRE(m);
  CHECK(m->acked_end.load());
  CHECK(m->acked_position.load() == 6);
}

TEST_CASE("pushes through the facade reach the feeder of a restarted group") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, restarting(true));
  REQUIRE(rt);
  auto plan = std::make_shared<flusher_plan>();
  plan->fail_once_on = "record 15";
  auto g = group("s", true, plan);
  g.intensity = 0; // the first crash ends the group; the root starts a new one (a new feeder)
  g.shard.batch.checkpoint_interval = 0ms;
  REQUIRE_FALSE((*rt)->start_shard(g));
  auto m = (*rt)->meters("s");
  std::uint64_t next = 0;
  for (int tries = 0; next < 100 && tries < 10'000; ++tries) {
    if (next == 20) // wait until the crash has happened and a new group runs the shard
      REQUIRE(eventually([&] { return m->restarts.load() >= 1 && m->generation.load() >= 2; }));
    auto err = (*rt)->push("s", records(next, 10));
    if (!err)
      next += 10;
    else
      REQUIRE(code_of(err) == errc::restarting);
  }
  CHECK(next == 100);
  CHECK(m->restarts.load() >= 1);
  REQUIRE_FALSE((*rt)->end("s"));
  auto out = (*rt)->await(30s);
  CHECK(out.clean());
  CHECK(out.shards[0].outcome == shard_outcome::ended);
  CHECK(m->acked_position.load() == 99);
}

TEST_CASE(
  "front actor: a finite shard whose group gave up once, restarted by the root, ends ended") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, restarting(true));
  REQUIRE(front);
  auto plan = std::make_shared<flusher_plan>();
  plan->fail_full_once = true;
  auto g = group("s", true, plan);
  g.intensity = 0; // the crash ends the group; the root (intensity 100) starts a new one at once
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 5))->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"s"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(f, [&] { return out->done(); }));
  REQUIRE(out->value);
  CHECK(plan->made == 2);
  REQUIRE(out->value->shards.size() == 1);
  INFO("reason: " << out->value->shards[0].reason);
  CHECK(out->value->shards[0].outcome == shard_outcome::ended);
  CHECK(out->value->clean());
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("a sealed finite runtime whose last running shard is stopped ends") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, quiet(true));
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("a", true)));
  REQUIRE_FALSE((*rt)->start_shard(group("b", true)));
  REQUIRE_FALSE((*rt)->push("a", records(0, 5)));
  REQUIRE_FALSE((*rt)->end("a"));
  (*rt)->seal();
  REQUIRE(eventually([&] { return outcome_of(**rt, "a") == shard_outcome::ended; }));
  REQUIRE_FALSE((*rt)->stop_shard("b"));
  auto out = (*rt)->await(30s);
  CHECK(out.ended);
  CHECK(out.clean());
  REQUIRE(out.shards.size() == 2);
  CHECK(out.shards[1].outcome == shard_outcome::stopped);
}

TEST_CASE("front actor: without restart_groups a group that gives up is final and the others "
          "finish") {
  testing::deterministic_fixture f;
  auto rcfg = quiet(true);
  rcfg.restart_groups = false;
  auto store = std::make_shared<memory_checkpoint_store>();
  rcfg.sink = spawn_checkpoint_sink(f.sys, store);
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto plan = std::make_shared<flusher_plan>();
  plan->gate_open = false; // the healthy shard holds its records until the other has given up
  auto healthy = group("healthy", true, plan);
  healthy.shard.heartbeat_interval = 10ms;
  for (auto& g : {group("doomed", true, true), healthy})
    REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  for (auto id : {"healthy", "doomed"})
    REQUIRE(
      ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{id}, records(0, 10))->value);
  REQUIRE(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"doomed"})->value);
  auto refused = [&](const char* id) {
    return code_of(ask_late<shard_stats>(f, *front, stats_atom::value, shard_id{id})->err);
  };
  REQUIRE(advance_until(f, [&] { return refused("doomed") == errc::shard_ended; }));
  CHECK(refused("healthy") == errc::none); // still running, its records still held
  plan->gate_open = true;
  REQUIRE(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"healthy"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(f, [&] { return out->done(); }));
  REQUIRE(out->value);
  CHECK(out->value->ended);
  CHECK_FALSE(out->value->clean());
  REQUIRE(out->value->shards.size() == 2);
  CHECK(out->value->shards[0].id == "doomed");
  CHECK(out->value->shards[0].outcome == shard_outcome::gave_up);
  CHECK_THAT(out->value->shards[0].reason, Catch::Contains("this flusher always fails"));
  CHECK(out->value->shards[1].outcome == shard_outcome::ended);
  REQUIRE(store->peek("healthy"));
  CHECK(store->peek("healthy")->ended); // all its records, and its end
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rcfg.sink, caf::exit_reason::user_shutdown);
}

namespace {

// Counts the records added; once `stop_at` are in, asks the runtime to shut down (as a signal
// would, while the shards are busy) and notes how many records each shard had added by then.
struct stop_probe {
  caf::actor front;
  std::uint64_t stop_at = 0;
  std::uint64_t added = 0;
  std::optional<std::uint64_t> added_at_stop;
  std::uint64_t read = 0; // records the feeder read from the source
  std::optional<std::uint64_t> read_at_stop;
  const std::vector<std::shared_ptr<stop_probe>>* all = nullptr; // every shard's probe
};

// A generator source that counts what its feeder reads.
struct counted_source final : record_source {
  testing::generator_source gen;
  std::shared_ptr<stop_probe> probe;
  counted_source(std::string id, std::shared_ptr<stop_probe> p, std::uint64_t n = 1'000'000)
    : gen(std::move(id), n), probe(std::move(p)) {
  }
  void rewind(const std::optional<sequence_number>& after) override {
    gen.rewind(after);
  }
  record_batch read(std::size_t max) override {
    auto batch = gen.read(max);
    probe->read += batch.size();
    return batch;
  }
  bool at_end() const override {
    return gen.at_end();
  }
};

class probing_flusher final : public flusher {
public:
  explicit probing_flusher(std::shared_ptr<stop_probe> p) : p_(std::move(p)) {
    // nop
  }

  add_result add(const stream_record&, flush_token t) override {
    if (++p_->added == p_->stop_at) {
      for (auto& p : *p_->all) {
        p->added_at_stop = p->added;
        p->read_at_stop = p->read;
      }
      caf::anon_send(p_->front, shutdown_atom::value);
    }
    pending_.push_back(t);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode) override {
    return std::exchange(pending_, {});
  }

  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  std::shared_ptr<stop_probe> p_;
  std::vector<flush_token> pending_;
};

} // namespace

// Drains the deterministic scheduler round robin, one message per actor per turn (its run() lets
// an actor drain its whole mailbox first), as actors on other threads interleave: so a stop request
// is seen while a shard's mailbox is still full. Returns whether it drained within `max_steps`.
bool run_round_robin(caf::scheduler::test_coordinator& sched, std::size_t max_steps) {
  for (std::size_t i = 0; i < max_steps; ++i) {
    if (!sched.try_run_once())
      return true;
    if (sched.jobs.size() > 1) // a job with more to do is back in front: its turn is over
      std::rotate(sched.jobs.begin(), sched.jobs.begin() + 1, sched.jobs.end());
  }
  return sched.jobs.empty();
}

// Starts shard `id` on `front`: a probing flusher, credit for 20 batches of 500 in its mailbox, a
// counted source of `records` records.
void start_probed(testing::deterministic_fixture& f, const caf::actor& front, const std::string& id,
                  bool finite, std::shared_ptr<stop_probe> probe, std::uint64_t records) {
  auto g = group(id, finite);
  g.shard.make_flusher = [probe](const shard_id&) {
    return std::make_unique<probing_flusher>(probe);
  };
  g.shard.credit = 10'000;
  g.feeder.max_batch = 500;
  g.source = [id, probe, records] { return std::make_shared<counted_source>(id, probe, records); };
  f.sys.spawn(
    [](caf::event_based_actor* self, caf::actor dst, shard_group_config cfg) {
      self->request(dst, caf::infinite, start_child_atom::value, std::move(cfg))
        .then([](caf::ok_atom) {}, [](caf::error&) {});
    },
    front, g);
}

TEST_CASE("front actor: a stop stops feeding at once: at most one batch per shard is added after "
          "it") {
  testing::deterministic_fixture f;
  auto rcfg = quiet(false);
  auto store = std::make_shared<memory_checkpoint_store>();
  rcfg.sink = spawn_checkpoint_sink(f.sys, store);
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  std::vector<std::shared_ptr<stop_probe>> probes;
  for (auto id : {"s0", "s1"}) {
    auto probe = std::make_shared<stop_probe>();
    probe->front = *front;
    probe->stop_at = id == std::string{"s0"} ? 5'000 : 1'000'000; // s0 asks for the stop
    probe->all = &probes;
    probes.push_back(probe);
    start_probed(f, *front, id, false, probe, 1'000'000); // 20 batches may wait in its mailbox
  }
  // Until the stop has ended the runtime (the sources never end by themselves).
  REQUIRE(run_round_robin(f.sched, 1'000'000));
  for (auto& p : probes) {
    REQUIRE(p->added_at_stop);
    CHECK(*p->added_at_stop > 0);               // both were busy
    CHECK(p->added - *p->added_at_stop <= 500); // the rest of the batch in progress, at most
    CHECK(p->read - *p->read_at_stop <= 500);   // and the feeder stopped reading
  }
  for (std::size_t i = 0; i < 2; ++i) {
    auto row = store->peek(i == 0 ? "s0" : "s1");
    REQUIRE(row);
    REQUIRE(row->position);
    CHECK_FALSE(row->ended);
    // The final checkpoint is the last record added: nothing dropped was checkpointed.
    CHECK(*row->position->base.to_uint64() + 1 == probes[i]->added);
  }
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rcfg.sink, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a stop that drops the last batches of a finite shard does not record its "
          "end") {
  testing::deterministic_fixture f;
  auto rcfg = quiet(true);
  auto store = std::make_shared<memory_checkpoint_store>();
  rcfg.sink = spawn_checkpoint_sink(f.sys, store);
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  std::vector<std::shared_ptr<stop_probe>> probes{std::make_shared<stop_probe>()};
  auto probe = probes.front();
  probe->front = *front;
  probe->stop_at = 1'000; // while the rest of the file and its end wait in the shard's mailbox
  probe->all = &probes;
  start_probed(f, *front, "s0", true, probe, 6'000); // all of it and its end are sent at once
  REQUIRE(run_round_robin(f.sched, 1'000'000));
  REQUIRE(probe->added_at_stop);
  CHECK(probe->added < 6'000); // the stop dropped batches ...
  auto row = store->peek("s0");
  REQUIRE(row);
  CHECK_FALSE(row->ended); // ... so the shard did not reach its end: no end marker
  REQUIRE(row->position);
  CHECK(*row->position->base.to_uint64() + 1 == probe->added);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rcfg.sink, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a shard whose source cannot be made fails to start with the source's own "
          "error") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(true));
  REQUIRE(front);
  auto g = group("shard-00002", true);
  g.source = []() -> std::shared_ptr<record_source> {
    throw error{errc::io_failed, "cannot open in/shard-00002.jsonl: No such file or directory"};
  };
  auto started = ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g);
  REQUIRE(started->done());
  REQUIRE(started->err);
  CHECK(code_of(started->err) == errc::io_failed);
  CHECK_THAT(text_of(started->err), Catch::Contains("shard-00002")
                                      && Catch::Contains("cannot open in/shard-00002.jsonl: No "
                                                         "such file or directory"));
  CHECK_THAT(text_of(started->err), !Catch::Contains("request_receiver_down"));
  // The runtime goes on: another shard starts.
  CHECK(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, group("other", true))->value);
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a flusher factory that throws a plain exception fails the start with its "
          "text, as flusher_failed inside start_failed") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(true));
  REQUIRE(front);
  auto g = group("bad-0", true);
  g.shard.make_flusher = [](const shard_id&) -> std::unique_ptr<flusher> {
    throw std::runtime_error("cannot connect (factory)");
  };
  auto started = ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g);
  REQUIRE(started->done());
  REQUIRE(started->err);
  CHECK(code_of(started->err) == errc::start_failed);
  CHECK_THAT(text_of(started->err),
             Catch::Contains("flusher_failed: shard bad-0: the flusher factory failed: cannot connect (factory)")
               && !Catch::Contains("system_error") && !Catch::Contains("runtime_error"));
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("front actor: a restart whose flusher factory fails is said each time, and is no "
          "restart in the meters") {
  testing::deterministic_fixture f;
  auto rcfg = quiet(true);
  rcfg.restart_groups = false;
  auto lines = std::make_shared<std::vector<std::string>>();
  rcfg.log = [lines](log_level, std::string_view text) { lines->emplace_back(text); };
  auto front = spawn_runtime(f.sys, rcfg);
  REQUIRE(front);
  auto made = std::make_shared<int>(0);
  auto g = group("s", true);
  g.report = {}; // through the runtime's log
  g.intensity = 3;
  g.shard.make_flusher = [made](const shard_id&) -> std::unique_ptr<flusher> {
    if (++*made == 1)
      return std::make_unique<test_flusher>(true); // the first incarnation fails on its flush
    throw error{errc::io_failed, "the sink is down (factory)"};
  };
  REQUIRE(ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g)->value);
  CHECK(ask_late<caf::ok_atom>(f, *front, push_atom::value, shard_id{"s"}, records(0, 5))->value);
  CHECK(ask_late<caf::ok_atom>(f, *front, end_atom::value, shard_id{"s"})->value);
  auto out = ask_late<runtime_outcome>(f, *front, await_atom::value);
  REQUIRE(advance_until(f, [&] { return out->done(); }));
  REQUIRE(out->value);
  REQUIRE(out->value->shards.size() == 1);
  CHECK(out->value->shards[0].outcome == shard_outcome::gave_up);
  const auto said = std::count_if(lines->begin(), lines->end(), [](const std::string& x) {
    return x.find("s: failed to start (io_failed): the sink is down (factory)")
           != std::string::npos;
  });
  CHECK(said == 3); // each failed restart, not only the give-up after them
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}

TEST_CASE("restarts in the meters count incarnations that started, not attempts") {
  threaded_system ts;
  auto rcfg = quiet(true);
  rcfg.restart_groups = false;
  auto rt = runtime::start(ts.sys, rcfg);
  REQUIRE(rt);
  auto made = std::make_shared<std::atomic<int>>(0);
  auto g = group("s", true);
  g.intensity = 3;
  g.shard.make_flusher = [made](const shard_id&) -> std::unique_ptr<flusher> {
    const int n = ++*made;
    if (n == 1 || n == 3) // the first and the third incarnation start, and fail on their flush
      return std::make_unique<test_flusher>(true);
    throw error{errc::io_failed, "the sink is down (factory)"};
  };
  REQUIRE_FALSE((*rt)->start_shard(g));
  REQUIRE_FALSE((*rt)->push("s", records(0, 5)));
  REQUIRE_FALSE((*rt)->end("s"));
  auto out = (*rt)->await(30s);
  REQUIRE(out.ended);
  REQUIRE(out.shards.size() == 1);
  CHECK(out.shards[0].outcome == shard_outcome::gave_up);
  CHECK(*made == 4); // the first start and three restarts, of which one started
  CHECK((*rt)->meters("s")->restarts.load() == 1);
}

TEST_CASE("a shard whose source cannot be made fails to start with the source's error, threaded") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, quiet(false));
  REQUIRE(rt);
  for (int i = 0; i < 20; ++i) { // the feeder's death races its start handshake: try it often
    auto g = group("shard-00002", false);
    g.source = []() -> std::shared_ptr<record_source> {
      throw error{errc::io_failed, "cannot open in/shard-00002.jsonl: No such file or directory"};
    };
    auto err = (*rt)->start_shard(g);
    REQUIRE(err);
    CHECK(code_of(err) == errc::io_failed);
    CHECK(text_of(err)
          == "shard shard-00002 cannot start: cannot open in/shard-00002.jsonl: No such file or "
             "directory");
  }
  CHECK_FALSE((*rt)->shutdown());
}

TEST_CASE(
  "front actor: a shard whose source cannot rewind fails to start with the source's error") {
  testing::deterministic_fixture f;
  auto front = spawn_runtime(f.sys, quiet(true));
  REQUIRE(front);
  struct unreadable final : record_source {
    void rewind(const std::optional<sequence_number>&) override {
      throw error{errc::io_failed, "cannot open in/shard-00003.jsonl: No such file or directory"};
    }
    record_batch read(std::size_t) override {
      return {};
    }
    bool at_end() const override {
      return false;
    }
  };
  auto g = group("shard-00003", true);
  g.source = [] { return std::make_shared<unreadable>(); };
  auto started = ask_late<caf::ok_atom>(f, *front, start_child_atom::value, g);
  REQUIRE(started->err);
  CHECK(code_of(started->err) == errc::io_failed);
  CHECK(text_of(started->err)
        == "shard shard-00003 cannot start: cannot open in/shard-00003.jsonl: No such file or "
           "directory");
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown);
}
