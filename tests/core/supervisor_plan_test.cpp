// The supervisor's pure state machine (core/supervisor_plan.hpp), without an actor system: events
// in, actions out, time passed in.
#include <shardflow/core/supervisor_plan.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

using kind = plan_action::kind;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;

plan_child child(std::string id, restart_type restart = restart_type::permanent,
                 bool significant = false) {
  plan_child c;
  c.id = std::move(id);
  c.restart = restart;
  c.significant = significant;
  c.shutdown = shutdown_spec::after(5s);
  return c;
}

supervisor_plan_config config(strategy how, int intensity = 1,
                              auto_shutdown mode = auto_shutdown::never) {
  supervisor_plan_config cfg;
  cfg.how = how;
  cfg.intensity = intensity;
  cfg.period = 5s;
  cfg.shutdown_mode = mode;
  return cfg;
}

// Plays the actor: keeps the actions, answers spawns at once (as the actor does).
struct driver {
  supervisor_plan plan;
  std::vector<plan_action> log; // every action so far
  std::vector<std::string> spawned_ids;
  bool auto_spawn = true;

  explicit driver(supervisor_plan_config cfg) : plan(cfg) {
    plan.at(t0);
  }

  // Takes the actions of the last event; spawns are answered with `spawned(key, true)`.
  std::vector<plan_action> take() {
    std::vector<plan_action> result;
    for (auto xs = plan.take_actions(); !xs.empty(); xs = plan.take_actions())
      for (auto& a : xs) {
        result.push_back(a);
        log.push_back(a);
        if (a.what == kind::spawn && auto_spawn) {
          spawned_ids.push_back(plan.find_key(a.key)->spec.id);
          plan.spawned(a.key, true);
        }
      }
    return result;
  }

  std::uint64_t key(const std::string& id) const {
    auto* c = plan.find_id(id);
    REQUIRE(c != nullptr);
    return c->key;
  }

  std::uint64_t gen(const std::string& id) const {
    return plan.find_id(id)->gen;
  }

  void ok(const std::string& id) {
    plan.handshake_ok(key(id), gen(id));
  }

  void down(const std::string& id, exit_kind how, bool gave_up = false) {
    plan.down(key(id), gen(id), child_exit{how, gave_up, "why"});
  }

  // Starts the static children, answering every handshake.
  void start_all() {
    plan.begin();
    for (int i = 0; i < 100 && plan.phase() == supervisor_phase::starting; ++i) {
      for (auto& a : take())
        if (a.what == kind::handshake)
          plan.handshake_ok(a.key, a.gen);
    }
    take();
    REQUIRE(plan.phase() == supervisor_phase::idle);
  }
};

std::vector<plan_action> of_kind(const std::vector<plan_action>& xs, kind k) {
  std::vector<plan_action> result;
  std::copy_if(xs.begin(), xs.end(), std::back_inserter(result),
               [k](const plan_action& a) { return a.what == k; });
  return result;
}

} // namespace

SCENARIO("static children start one after another, each after its handshake",
         "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one)};
  d.plan.add_static(child("a"));
  d.plan.add_static(child("b"));
  d.plan.begin();
  auto xs = d.take();
  CHECK(d.spawned_ids == std::vector<std::string>{"a"});
  REQUIRE(of_kind(xs, kind::handshake).size() == 1);
  CHECK(d.plan.phase() == supervisor_phase::starting);
  d.ok("a");
  xs = d.take();
  CHECK(d.spawned_ids == std::vector<std::string>{"a", "b"});
  CHECK(of_kind(xs, kind::started).empty());
  d.ok("b");
  xs = d.take();
  CHECK(of_kind(xs, kind::started).size() == 1);
  CHECK(d.plan.started());
  CHECK(d.plan.phase() == supervisor_phase::idle);
}

SCENARIO("with parallel_start the static children's handshakes overlap",
         "[core][supervisor_plan]") {
  auto cfg = config(strategy::one_for_one, 1, auto_shutdown::all_significant);
  cfg.parallel_start = true;
  driver d{cfg};
  for (const auto* id : {"a", "b", "c"})
    d.plan.add_static(child(id, restart_type::transient, true));
  d.plan.begin();
  auto xs = d.take();
  THEN("every child is spawned in list order before any answer, one handshake each") {
    CHECK(d.spawned_ids == std::vector<std::string>{"a", "b", "c"});
    CHECK(of_kind(xs, kind::handshake).size() == 3);
    CHECK(of_kind(xs, kind::started).empty());
    CHECK(d.plan.phase() == supervisor_phase::starting);
  }
  WHEN("the answers come in any order, one child ending before its own") {
    d.ok("c");
    d.down("b", exit_kind::normal); // a finite child done before its answer: started and ended
    CHECK(of_kind(d.take(), kind::started).empty());
    d.ok("a");
    xs = d.take();
    THEN("the start is over with the last one, and the early exit is handled after it") {
      CHECK(of_kind(xs, kind::started).size() == 1);
      CHECK(of_kind(xs, kind::quit).empty());
      CHECK(d.plan.started());
      CHECK(d.plan.find_id("a")->phase == child_phase::running);
      CHECK(d.plan.find_id("b")->phase == child_phase::stopped);
      CHECK(d.plan.find_id("c")->phase == child_phase::running);
    }
  }
  WHEN("one answer is a failure") {
    d.ok("a");
    d.plan.handshake_failed(d.key("b"), d.gen("b"), "no checkpoint");
    xs = d.take();
    THEN("the start fails: b is killed, the others are stopped in reverse order") {
      CHECK(d.plan.start_failed());
      auto stops = of_kind(xs, kind::stop);
      REQUIRE(stops.size() == 2);
      CHECK(stops[0].key == d.key("b"));
      CHECK(stops[0].kill);
      CHECK(stops[1].key == d.key("c"));
      CHECK(of_kind(xs, kind::started).empty());
      AND_THEN("a late answer completes nothing, and the supervisor quits once they are down") {
        d.ok("c");
        CHECK(of_kind(d.take(), kind::started).empty());
        d.down("c", exit_kind::shutdown);
        xs = d.take();
        REQUIRE(of_kind(xs, kind::stop).size() == 1);
        CHECK(of_kind(xs, kind::stop)[0].key == d.key("a"));
        d.down("a", exit_kind::shutdown);
        xs = d.take();
        REQUIRE(of_kind(xs, kind::quit).size() == 1);
        CHECK(of_kind(xs, kind::quit)[0].why == quit_reason::start_failed);
        CHECK(of_kind(xs, kind::started).empty());
      }
    }
  }
}

SCENARIO("a start window bounds the handshakes of a parallel start", "[core][supervisor_plan]") {
  auto cfg = config(strategy::one_for_one);
  cfg.parallel_start = true;
  cfg.start_window = 2;
  driver d{cfg};
  for (const auto* id : {"a", "b", "c"})
    d.plan.add_static(child(id));
  d.plan.begin();
  d.take();
  CHECK(d.spawned_ids == std::vector<std::string>{"a", "b"}); // two outstanding: c waits
  d.ok("b");
  auto xs = d.take();
  CHECK(d.spawned_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(of_kind(xs, kind::started).empty());
  d.ok("c");
  CHECK(of_kind(d.take(), kind::started).empty());
  d.ok("a");
  CHECK(of_kind(d.take(), kind::started).size() == 1);
  CHECK(d.plan.phase() == supervisor_phase::idle);
}

SCENARIO("a static child that ends normally before its handshake answer is no start failure",
         "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one, 1, auto_shutdown::all_significant)};
  d.plan.add_static(child("a", restart_type::transient, true));
  d.plan.add_static(child("b", restart_type::transient, true));
  d.plan.begin();
  d.take();
  d.down("a", exit_kind::normal); // done before its supervisor heard back
  auto xs = d.take();
  CHECK(of_kind(xs, kind::quit).empty());
  CHECK(d.spawned_ids == std::vector<std::string>{"a", "b"}); // the sequence goes on
  d.ok("b");
  xs = d.take();
  CHECK(of_kind(xs, kind::started).size() == 1);
  CHECK(of_kind(xs, kind::quit).empty()); // b is still up
  d.down("b", exit_kind::shutdown);
  xs = d.take();
  auto quit = of_kind(xs, kind::quit);
  REQUIRE(quit.size() == 1);
  CHECK(quit[0].why == quit_reason::auto_shutdown);
  AND_WHEN("instead a child crashes before its handshake answer") {
    driver e{config(strategy::one_for_one)};
    e.plan.add_static(child("a"));
    e.plan.begin();
    e.take();
    e.down("a", exit_kind::abnormal);
    auto ys = e.take();
    auto q = of_kind(ys, kind::quit);
    REQUIRE(q.size() == 1);
    CHECK(q[0].why == quit_reason::start_failed);
    CHECK(q[0].text == "child a failed to start: why");
  }
}

SCENARIO("more restarts than the intensity allows give up with quit_reason::gave_up",
         "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one, 1)};
  d.plan.add_static(child("a"));
  d.plan.add_static(child("b"));
  d.start_all();
  d.down("a", exit_kind::abnormal);
  auto xs = d.take();
  CHECK(of_kind(xs, kind::spawn).size() == 1); // restarted
  d.ok("a");
  d.take();
  d.plan.at(t0 + 1s);
  d.down("a", exit_kind::abnormal);
  xs = d.take();
  auto reports = of_kind(xs, kind::report);
  REQUIRE(reports.size() == 2);
  CHECK(reports[1].text.find("giving up: restart limit reached") == 0);
  auto stops = of_kind(xs, kind::stop);
  REQUIRE(stops.size() == 1); // b, the only one alive
  CHECK(stops[0].key == d.key("b"));
  CHECK(of_kind(xs, kind::quit).empty()); // b's down first
  CHECK(d.plan.phase() == supervisor_phase::shutting_down);
  d.down("b", exit_kind::shutdown);
  auto quit = of_kind(d.take(), kind::quit);
  REQUIRE(quit.size() == 1);
  CHECK(quit[0].why == quit_reason::gave_up);
  CHECK(quit[0].text.find("child a") != std::string::npos);
  CHECK(d.plan.phase() == supervisor_phase::ended);
}

SCENARIO("one strategy function serves exits and retries after a failed restart",
         "[core][supervisor_plan]") {
  driver d{config(strategy::rest_for_one, 10)};
  for (auto* id : {"a", "b", "c"})
    d.plan.add_static(child(id));
  d.start_all();
  d.spawned_ids.clear();
  d.down("b", exit_kind::abnormal);
  auto xs = d.take();
  auto stops = of_kind(xs, kind::stop);
  REQUIRE(stops.size() == 1); // c, the later one
  CHECK(stops[0].key == d.key("c"));
  CHECK(d.plan.phase() == supervisor_phase::busy);
  d.down("c", exit_kind::shutdown);
  xs = d.take();
  CHECK(d.spawned_ids == std::vector<std::string>{"b"});
  WHEN("b's new incarnation fails its handshake") {
    d.plan.handshake_failed(d.key("b"), d.gen("b"), "no");
    xs = d.take();
    auto timers = of_kind(xs, kind::timer);
    REQUIRE(timers.size() == 1);
    CHECK(timers[0].timer.kind == timer_kind::try_again);
    CHECK(timers[0].delay == 0s);
    CHECK(d.plan.find_id("b")->phase == child_phase::restarting);
    CHECK(d.plan.phase() == supervisor_phase::idle); // requests are served meanwhile
    THEN("the retry resumes at b and then starts c") {
      d.plan.timer_fired(timers[0].timer);
      d.take();
      d.ok("b");
      d.take();
      CHECK(d.spawned_ids == std::vector<std::string>{"b", "b", "c"});
      d.ok("c");
      d.take();
      CHECK(d.plan.phase() == supervisor_phase::idle);
    }
  }
}

SCENARIO("exits during a group restart wait until it is done", "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_all, 10)};
  for (auto* id : {"a", "b", "c"})
    d.plan.add_static(child(id));
  d.start_all();
  d.down("c", exit_kind::abnormal); // stops b first, then a
  auto stops = of_kind(d.take(), kind::stop);
  REQUIRE(stops.size() == 1);
  CHECK(stops[0].key == d.key("b"));
  d.down("a", exit_kind::abnormal); // a crashes by itself meanwhile: it waits
  CHECK(of_kind(d.take(), kind::report).empty());
  d.spawned_ids.clear();
  d.down("b", exit_kind::shutdown);
  d.take();
  d.ok("a");
  d.take();
  d.ok("b");
  d.take();
  d.ok("c");
  auto xs = d.take();
  CHECK(d.plan.phase() == supervisor_phase::idle);
  // One group restart: a's crash belonged to an incarnation the restart replaced.
  CHECK(d.spawned_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(of_kind(xs, kind::report).empty());
}

SCENARIO("a significant child that gave up does not trigger auto shutdown",
         "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one, 5, auto_shutdown::any_significant)};
  d.plan.add_static(child("sub", restart_type::temporary, true));
  d.plan.add_static(child("done", restart_type::transient, true));
  d.start_all();
  d.down("sub", exit_kind::abnormal, true);
  auto xs = d.take();
  CHECK(of_kind(xs, kind::quit).empty());
  CHECK(of_kind(xs, kind::forget).size() == 1); // temporary: its spec goes
  CHECK(d.plan.phase() == supervisor_phase::idle);
  d.down("done", exit_kind::normal);
  xs = d.take();
  REQUIRE(of_kind(xs, kind::quit).size() == 1);
  CHECK(of_kind(xs, kind::quit)[0].why == quit_reason::auto_shutdown);
}

SCENARIO("timers carry their kind and generation; stale ones are ignored",
         "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one, 10)};
  auto a = child("a");
  a.backoff.min = 1s;
  a.backoff.max = 1s;
  a.backoff.random_factor = 0;
  d.plan.add_static(a);
  d.start_all();
  auto resets = of_kind(d.log, kind::timer);
  REQUIRE(resets.size() == 1);
  CHECK(resets[0].timer.kind == timer_kind::backoff_reset);
  d.down("a", exit_kind::abnormal);
  auto timers = of_kind(d.take(), kind::timer);
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].timer.kind == timer_kind::restart_backoff);
  CHECK(timers[0].delay == 1s);
  CHECK(timers[0].timer.key == d.key("a"));
  WHEN("the child is terminated while it waits") {
    d.plan.terminate_child("a", 7);
    auto replies = of_kind(d.take(), kind::reply);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].token == 7);
    CHECK(replies[0].code == errc::none);
    THEN("the restart timer no longer starts it") {
      d.spawned_ids.clear();
      d.plan.timer_fired(timers[0].timer);
      d.take();
      CHECK(d.spawned_ids.empty());
    }
  }
  WHEN("the timer fires") {
    d.spawned_ids.clear();
    d.plan.timer_fired(timers[0].timer);
    d.take();
    CHECK(d.spawned_ids == std::vector<std::string>{"a"});
  }
}

SCENARIO("requests are answered by a reply action with their token", "[core][supervisor_plan]") {
  driver d{config(strategy::one_for_one, 10)};
  d.plan.add_static(child("a"));
  d.start_all();
  d.plan.delete_child("zz", 1);
  d.plan.restart_child("a", 2);
  auto xs = of_kind(d.take(), kind::reply);
  REQUIRE(xs.size() == 2);
  CHECK(xs[0].code == errc::not_found);
  CHECK(xs[1].code == errc::running);
  const auto key = d.plan.start_child(child("b"), 3);
  d.take();
  CHECK(d.plan.phase() == supervisor_phase::busy);
  d.ok("b");
  xs = of_kind(d.take(), kind::reply);
  REQUIRE(xs.size() == 1);
  CHECK(xs[0].token == 3);
  CHECK(xs[0].key == key);
  d.auto_spawn = false;
  d.plan.start_child(child("c"), 4);
  REQUIRE(of_kind(d.take(), kind::spawn).size() == 1);
  d.plan.spawn_failed(d.key("c"), "no");
  xs = d.take();
  auto replies = of_kind(xs, kind::reply);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].code == errc::start_failed);
  CHECK(replies[0].text == "child c failed to start: no");
  CHECK(of_kind(xs, kind::forget).size() == 1); // no spec is kept
  CHECK(d.plan.find_id("c") == nullptr);
}
