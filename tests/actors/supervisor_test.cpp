// OTP conformance of actors/supervisor.hpp, after the cases of OTP's own supervisor_SUITE.erl, on
// CAF's deterministic scheduler with simulated time.
#include <shardflow/actors/supervisor.hpp>

#include <map>
#include <memory>
#include <set>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"

using namespace shardflow;
using namespace std::chrono_literals;
using shardflow::testing::deterministic_fixture;

namespace {

using die_atom = caf::atom_constant<caf::atom("die")>;
using late_atom = caf::atom_constant<caf::atom("late")>;

// What the test workers did, in order, shared with the test.
struct test_log {
  std::vector<std::string> started;
  std::vector<std::pair<std::string, caf::error>> stopped; // exits they saw coming (trapped)
  std::set<std::string> fail_start;                        // start function returns an error
  std::set<std::string> fail_once;                         // ... once, then starts normally
  std::set<std::string> ignore;                            // start function returns ignore
  std::set<std::string> crash_in_init;                     // the actor dies before the handshake
  std::set<std::string> end_in_init; // it starts, then ends normally before the handshake reply
  std::set<std::string> stubborn;    // ignores shutdown requests
};

caf::behavior test_worker(caf::event_based_actor* self, caf::actor sup, std::string id,
                          std::shared_ptr<test_log> log) {
  follow_supervisor(self, sup);
  if (log->crash_in_init.count(id) > 0) {
    self->quit(make_error(errc::flusher_failed, "crash in init"));
    return {};
  }
  log->started.push_back(id);
  if (log->end_in_init.count(id) > 0) {
    self->quit(); // a finite child with nothing to do: done before its supervisor hears back
    return {};
  }
  self->set_exit_handler([self, id, log](caf::exit_msg& m) {
    log->stopped.emplace_back(id, m.reason);
    if (log->stubborn.count(id) == 0)
      self->quit(m.reason);
  });
  return {
    [](start_atom) { return caf::ok_atom::value; },
    [self](die_atom, caf::error& reason) { self->quit(std::move(reason)); },
  };
}

child_spec worker(std::string id, std::shared_ptr<test_log> log,
                  restart_type restart = restart_type::permanent) {
  child_spec spec;
  spec.id = id;
  spec.restart = restart;
  spec.start = [id, log](start_context& ctx) -> caf::expected<caf::actor> {
    if (log->fail_start.count(id) > 0 || log->fail_once.erase(id) > 0)
      return make_error(errc::start_failed, "injected start failure");
    if (log->ignore.count(id) > 0)
      return caf::actor{};
    return ctx.self->spawn(test_worker, caf::actor_cast<caf::actor>(ctx.self), id, log);
  };
  return spec;
}

supervisor_flags flags(strategy how, int intensity = 1, std::chrono::seconds period = 5s) {
  supervisor_flags f;
  f.how = how;
  f.intensity = intensity;
  f.period = period;
  return f;
}

struct fixture : deterministic_fixture {
  std::shared_ptr<test_log> log = std::make_shared<test_log>();

  caf::actor start_sup(supervisor_flags flags, std::vector<child_spec> specs) {
    auto sup = spawn_supervisor(sys, flags, std::move(specs));
    REQUIRE(sup);
    run();
    return *sup;
  }

  std::vector<child_info> which(const caf::actor& sup) {
    auto r = ask<std::vector<child_info>>(sup, which_children_atom::value);
    REQUIRE(r.value);
    return *r.value;
  }

  child_counts counts(const caf::actor& sup) {
    auto r = ask<child_counts>(sup, count_children_atom::value);
    REQUIRE(r.value);
    return *r.value;
  }

  caf::actor child(const caf::actor& sup, const std::string& id) {
    for (auto& c : which(sup))
      if (c.id == id)
        return c.handle;
    return caf::actor{};
  }

  void kill_child(const caf::actor& sup, const std::string& id, caf::error reason) {
    auto hdl = child(sup, id);
    REQUIRE(hdl);
    caf::anon_send(hdl, die_atom::value, std::move(reason));
    run();
  }

  bool alive(const caf::actor& hdl) {
    return !is_dead(hdl);
  }

  // Starts a supervisor of one child "a" with `shutdown`, shuts the supervisor down and returns the
  // reason the child died with.
  caf::error shut_down_one(shutdown_spec shutdown) {
    auto a = worker("a", log);
    a.shutdown = shutdown;
    auto sup = start_sup(flags(strategy::one_for_one), {a});
    auto hdl = child(sup, "a");
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    run();
    caf::error reason;
    REQUIRE(is_dead(hdl, &reason));
    CHECK(is_dead(sup));
    return reason;
  }
};

caf::error crash() {
  return make_error(errc::flusher_failed, "boom");
}

} // namespace

// 1. sup_start_normal
SCENARIO_METHOD(fixture, "a supervisor without children starts and stops with shutdown",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one), {});
  CHECK(ask<caf::ok_atom>(sup, start_atom::value).value);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::error reason;
  run();
  REQUIRE(is_dead(sup, &reason));
  CHECK(reason == caf::exit_reason::user_shutdown);
}

// 2. sup_start_ignore_child
SCENARIO_METHOD(fixture, "a permanent child whose start returns ignore keeps its spec",
                "[actors][supervisor]") {
  log->ignore = {"a"};
  auto sup = start_sup(flags(strategy::one_for_one), {worker("a", log), worker("b", log)});
  auto n = counts(sup);
  CHECK(n.specs == 2);
  CHECK(n.active == 1);
  CHECK(which(sup)[1].status == child_status::undefined);
}

// 3. sup_start_ignore_temporary_child
SCENARIO_METHOD(fixture, "a temporary child whose start returns ignore leaves no spec",
                "[actors][supervisor]") {
  log->ignore = {"a"};
  auto sup = start_sup(flags(strategy::one_for_one),
                       {worker("a", log, restart_type::temporary), worker("b", log)});
  CHECK(counts(sup).specs == 1);
}

// 4. sup_start_child_returns_error
SCENARIO_METHOD(fixture, "a start_child error is returned and no spec is stored",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one), {});
  log->fail_start = {"x"};
  auto r = ask<caf::actor>(sup, start_child_atom::value, worker("x", log));
  CHECK(code_of(r.err) == errc::start_failed);
  CHECK(counts(sup).specs == 0);
  log->crash_in_init = {"y"};
  r = ask<caf::actor>(sup, start_child_atom::value, worker("y", log));
  CHECK(code_of(r.err) == errc::start_failed);
  CHECK(counts(sup).specs == 0);
}

// 5. sup_stop_infinity
SCENARIO_METHOD(fixture, "children with shutdown infinity are stopped with shutdown",
                "[actors][supervisor]") {
  CHECK(shut_down_one(shutdown_spec::infinity()) == caf::exit_reason::user_shutdown);
}

// 6. sup_stop_timeout and 24. child_unlink (waiting on a monitor never hangs)
SCENARIO_METHOD(fixture, "a child still alive after its shutdown timeout is killed",
                "[actors][supervisor]") {
  auto a = worker("graceful", log);
  auto b = worker("stubborn", log);
  b.shutdown = shutdown_spec::after(1s);
  log->stubborn = {"stubborn"};
  auto sup = start_sup(flags(strategy::one_for_one), {a, b});
  auto ha = child(sup, "graceful");
  auto hb = child(sup, "stubborn");
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  CHECK(alive(hb));
  CHECK(alive(sup));
  advance(1s);
  caf::error ra;
  caf::error rb;
  REQUIRE(is_dead(hb, &rb));
  REQUIRE(is_dead(ha, &ra));
  CHECK(rb == caf::exit_reason::kill);
  CHECK(ra == caf::exit_reason::user_shutdown);
  CHECK(is_dead(sup));
}

// 7. sup_stop_brutal_kill
SCENARIO_METHOD(fixture, "a brutal_kill child dies with kill", "[actors][supervisor]") {
  CHECK(shut_down_one(shutdown_spec::brutal_kill()) == caf::exit_reason::kill);
  CHECK(log->stopped.empty()); // a kill cannot be trapped
}

// 8. sup_stop_race
SCENARIO_METHOD(fixture, "shutdown completes while children exit by themselves",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one, 10),
                       {worker("a", log), worker("b", log), worker("c", log)});
  caf::anon_send(child(sup, "a"), die_atom::value, caf::error{});
  caf::anon_send(child(sup, "c"), die_atom::value, crash());
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  CHECK(is_dead(sup));
}

// 9. order_of_children
SCENARIO_METHOD(fixture, "children start in list order and stop in reverse",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::rest_for_one, 5),
                       {worker("a", log), worker("b", log), worker("c", log), worker("d", log)});
  CHECK(log->started == std::vector<std::string>{"a", "b", "c", "d"});
  WHEN("b crashes under rest_for_one") {
    kill_child(sup, "b", crash());
    THEN("d and c are stopped newest first, then b, c, d start again in order") {
      REQUIRE(log->stopped.size() == 2);
      CHECK(log->stopped[0].first == "d");
      CHECK(log->stopped[1].first == "c");
      CHECK(log->started == std::vector<std::string>{"a", "b", "c", "d", "b", "c", "d"});
    }
  }
  WHEN("the supervisor stops") {
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    run();
    std::vector<std::string> order;
    for (auto& s : log->stopped)
      order.push_back(s.first);
    CHECK(order == std::vector<std::string>{"d", "c", "b", "a"});
  }
}

// 10. child_adm / extra_return
SCENARIO_METHOD(fixture, "the management API answers as OTP's does", "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one, 10), {worker("a", log)});
  auto started = ask<caf::actor>(sup, start_child_atom::value, worker("b", log));
  REQUIRE(started.value);
  CHECK(*started.value == child(sup, "b"));
  CHECK(code_of(ask<caf::actor>(sup, start_child_atom::value, worker("b", log)).err)
        == errc::already_started);
  CHECK(which(sup).front().id == "b"); // newest first
  CHECK(code_of(ask<caf::ok_atom>(sup, delete_child_atom::value, std::string{"b"}).err)
        == errc::running);
  CHECK(code_of(ask<caf::actor>(sup, restart_child_atom::value, std::string{"b"}).err)
        == errc::running);
  REQUIRE(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"b"}).value);
  CHECK(counts(sup).specs == 2); // the spec stays
  CHECK(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"b"}).value); // again: ok
  CHECK(code_of(ask<caf::actor>(sup, start_child_atom::value, worker("b", log)).err)
        == errc::already_present);
  auto restarted = ask<caf::actor>(sup, restart_child_atom::value, std::string{"b"});
  REQUIRE(restarted.value);
  CHECK(*restarted.value == child(sup, "b"));
  REQUIRE(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"b"}).value);
  REQUIRE(ask<caf::ok_atom>(sup, delete_child_atom::value, std::string{"b"}).value);
  CHECK(counts(sup).specs == 1);
  for (auto* what : {"terminate", "restart", "delete"}) {
    INFO(what);
    caf::error err;
    if (std::string{what} == "terminate")
      err = ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"zz"}).err;
    else if (std::string{what} == "restart")
      err = ask<caf::actor>(sup, restart_child_atom::value, std::string{"zz"}).err;
    else
      err = ask<caf::ok_atom>(sup, delete_child_atom::value, std::string{"zz"}).err;
    CHECK(code_of(err) == errc::not_found);
  }
  AND_WHEN("a child exits abnormally") {
    auto before = child(sup, "a");
    kill_child(sup, "a", crash());
    THEN("it is restarted automatically") {
      auto after = child(sup, "a");
      CHECK(after);
      CHECK(after != before);
    }
  }
}

// 11. child_adm_simple
SCENARIO_METHOD(fixture,
                "simple_one_for_one children are added with arguments and addressed by handle",
                "[actors][supervisor]") {
  child_spec tmpl;
  tmpl.start = [this](start_context& ctx) -> caf::expected<caf::actor> {
    auto id = ctx.args.get_as<std::string>(0);
    return ctx.self->spawn(test_worker, caf::actor_cast<caf::actor>(ctx.self), id, log);
  };
  auto sup = start_sup(flags(strategy::simple_one_for_one, 10), {tmpl});
  auto a = ask<caf::actor>(sup, start_child_atom::value, caf::make_message(std::string{"a"}));
  auto b = ask<caf::actor>(sup, start_child_atom::value, caf::make_message(std::string{"b"}));
  REQUIRE(a.value);
  REQUIRE(b.value);
  CHECK(log->started == std::vector<std::string>{"a", "b"});
  CHECK(counts(sup).active == 2);
  CHECK(code_of(ask<caf::actor>(sup, restart_child_atom::value, std::string{"a"}).err)
        == errc::simple_one_for_one);
  CHECK(code_of(ask<caf::ok_atom>(sup, delete_child_atom::value, std::string{"a"}).err)
        == errc::simple_one_for_one);
  CHECK(code_of(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"a"}).err)
        == errc::simple_one_for_one);
  REQUIRE(ask<caf::ok_atom>(sup, terminate_child_atom::value, *a.value).value);
  CHECK(counts(sup).specs == 1);
  CHECK(is_dead(*a.value));
  CHECK(code_of(ask<caf::ok_atom>(sup, terminate_child_atom::value, *a.value).err)
        == errc::not_found);
}

// 12-14. permanent_*, transient_*, temporary_*
SCENARIO_METHOD(fixture, "restart types decide which exits restart a child",
                "[actors][supervisor]") {
  struct row {
    restart_type type;
    caf::error reason;
    bool restarted;
    std::size_t specs_after;
  };
  const std::vector<row> table = {
    {restart_type::permanent, caf::error{}, true, 1},
    {restart_type::permanent, caf::exit_reason::user_shutdown, true, 1},
    {restart_type::permanent, crash(), true, 1},
    {restart_type::transient, caf::error{}, false, 1},
    {restart_type::transient, caf::exit_reason::user_shutdown, false, 1},
    {restart_type::transient, crash(), true, 1},
    {restart_type::temporary, caf::error{}, false, 0},
    {restart_type::temporary, crash(), false, 0},
  };
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO("row " << i);
    auto& r = table[i];
    log->started.clear();
    auto sup = start_sup(flags(strategy::one_for_one, 10), {worker("w", log, r.type)});
    kill_child(sup, "w", r.reason);
    CHECK(static_cast<bool>(child(sup, "w")) == r.restarted);
    CHECK(log->started.size() == (r.restarted ? 2u : 1u));
    CHECK(counts(sup).specs == r.specs_after);
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    run();
  }
}

// 15. temporary_bystander
SCENARIO_METHOD(fixture, "a temporary bystander of a group restart is dropped, not restarted",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_all, 10),
                       {worker("perm", log), worker("temp", log, restart_type::temporary)});
  kill_child(sup, "perm", crash());
  CHECK(alive(sup));
  CHECK(counts(sup).specs == 1);
  CHECK(child(sup, "perm"));
}

// 16. multiple_restarts
SCENARIO_METHOD(fixture, "restarts spaced wider than the period never end the supervisor",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one, 1, 1s), {worker("a", log)});
  for (int i = 0; i < 5; ++i) {
    kill_child(sup, "a", crash());
    REQUIRE(alive(sup));
    advance(2100ms);
  }
  CHECK(log->started.size() == 6);
}

// 17. one_for_one
SCENARIO_METHOD(fixture, "one_for_one restarts only the failed child, until the intensity is spent",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one, 2, 5s), {worker("a", log), worker("b", log)});
  auto b = child(sup, "b");
  kill_child(sup, "a", crash());
  CHECK(child(sup, "b") == b);
  kill_child(sup, "a", crash());
  CHECK(alive(sup));
  kill_child(sup, "a", crash()); // the third within the period with intensity 2
  caf::error reason;
  REQUIRE(is_dead(sup, &reason));
  // Giving up is abnormal (OTP exits with shutdown; here it must escalate): a parent restarts it.
  CHECK(code_of(reason) == errc::restart_limit_reached);
  CHECK_THAT(text_of(reason), Catch::Contains("restart limit reached"));
  CHECK(is_dead(b));
}

// 18. one_for_one_escalation
SCENARIO_METHOD(fixture, "a child whose restart keeps failing uses up the intensity",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one, 3, 5s), {worker("a", log), worker("b", log)});
  auto b = child(sup, "b");
  log->fail_start = {"a"};
  kill_child(sup, "a", crash());
  REQUIRE(is_dead(sup));
  CHECK(is_dead(b));
}

// 19. one_for_all / one_for_all_escalation
SCENARIO_METHOD(fixture, "one_for_all gives every child a new identity", "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_all, 1, 5s), {worker("a", log), worker("b", log)});
  auto a = child(sup, "a");
  auto b = child(sup, "b");
  kill_child(sup, "a", crash());
  CHECK(child(sup, "a") != a);
  CHECK(child(sup, "b") != b);
  CHECK(is_dead(b));
  kill_child(sup, "b", crash());
  CHECK(is_dead(sup));
}

// 20. one_for_all_other_child_fails_restart
SCENARIO_METHOD(fixture, "a partly restarted one_for_all group is torn down and restarted again",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_all, 10, 5s),
                       {worker("a", log), worker("b", log), worker("c", log)});
  log->started.clear();
  log->stopped.clear();
  log->fail_once = {"b"};
  kill_child(sup, "c", crash());
  // Attempt 1: stop b, a; start a; b fails. Retry: stop a again, then start a, b, c.
  CHECK(log->started == std::vector<std::string>{"a", "a", "b", "c"});
  REQUIRE(log->stopped.size() == 3);
  CHECK(log->stopped[2].first == "a");
  CHECK(log->stopped[2].second == caf::exit_reason::user_shutdown);
  CHECK(alive(sup));
  CHECK(counts(sup).active == 3);
}

// 21. rest_for_one / rest_for_one_escalation
SCENARIO_METHOD(fixture, "rest_for_one restarts the later children and leaves the earlier ones",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::rest_for_one, 1, 5s),
                       {worker("a", log), worker("b", log), worker("c", log)});
  auto a = child(sup, "a");
  auto c = child(sup, "c");
  kill_child(sup, "b", crash());
  CHECK(child(sup, "a") == a);
  CHECK(child(sup, "c") != c);
  kill_child(sup, "c", crash());
  CHECK(is_dead(sup));
  CHECK(is_dead(a));
}

// 22. rest_for_one_other_child_fails_restart
SCENARIO_METHOD(fixture, "a rest_for_one retry resumes at the child that failed to start",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::rest_for_one, 10, 60s),
                       {worker("a", log), worker("b", log), worker("c", log)});
  auto a = child(sup, "a");
  log->started.clear();
  log->fail_once = {"c"};
  kill_child(sup, "b", crash());
  // b restarts, c fails to start; the retry starts c alone, not b again.
  CHECK(log->started == std::vector<std::string>{"b", "c"});
  CHECK(child(sup, "a") == a);
  CHECK(counts(sup).active == 3);
}

// 23. simple_one_for_one / simple_one_for_one_shutdown
SCENARIO_METHOD(fixture, "simple_one_for_one restarts dynamic children and stops them in parallel",
                "[actors][supervisor]") {
  child_spec tmpl;
  tmpl.shutdown = shutdown_spec::after(2s);
  tmpl.start = [this](start_context& ctx) -> caf::expected<caf::actor> {
    auto id = ctx.args.get_as<std::string>(0);
    return ctx.self->spawn(test_worker, caf::actor_cast<caf::actor>(ctx.self), id, log);
  };
  auto sup = start_sup(flags(strategy::simple_one_for_one, 10), {tmpl});
  std::vector<caf::actor> kids;
  for (auto* id : {"a", "b", "c"})
    kids.push_back(
      *ask<caf::actor>(sup, start_child_atom::value, caf::make_message(std::string{id})).value);
  caf::anon_send(kids[1], die_atom::value, crash());
  run();
  CHECK(counts(sup).active == 3);
  CHECK(log->started.size() == 4);
  log->stubborn = {"a", "c"};
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  CHECK(log->stopped.size() == 3); // all were signalled at once
  CHECK(alive(sup));
  advance(2s); // one shared timer for all of them
  CHECK(is_dead(sup));
}

// 25. hanging_restart_loop and 26. count_restarting_children
SCENARIO_METHOD(fixture, "while a restart keeps failing the child shows restarting",
                "[actors][supervisor]") {
  auto a = worker("a", log);
  a.backoff.min = 1s;
  a.backoff.max = 10s;
  a.backoff.random_factor = 0;
  auto sup = start_sup(flags(strategy::one_for_one, 100, 3600s), {a, worker("b", log)});
  log->fail_start = {"a"};
  kill_child(sup, "a", crash());
  advance(1s); // the first restart attempt fails; the retry waits
  CHECK(which(sup)[1].status == child_status::restarting);
  CHECK(code_of(ask<caf::actor>(sup, restart_child_atom::value, std::string{"a"}).err)
        == errc::restarting);
  CHECK(code_of(ask<caf::ok_atom>(sup, delete_child_atom::value, std::string{"a"}).err)
        == errc::restarting);
  auto n = counts(sup);
  CHECK(n.specs == 2);
  CHECK(n.active == 1);
  REQUIRE(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"a"}).value);
  CHECK(which(sup)[1].status == child_status::undefined);
  log->fail_start.clear();
  advance(30s);
  CHECK_FALSE(child(sup, "a")); // the cancelled restart did not come back
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  CHECK(is_dead(sup));
}

// 27. tree
SCENARIO_METHOD(fixture, "nested supervisors escalate by restarting the subtree",
                "[actors][supervisor]") {
  auto inner = supervisor_child("inner", flags(strategy::one_for_one, 0, 5s),
                                {worker("leaf", log)});
  auto sup = start_sup(flags(strategy::one_for_one, 5, 5s), {worker("top", log), inner});
  auto inner_hdl = child(sup, "inner");
  REQUIRE(inner_hdl);
  auto top = child(sup, "top");
  auto r = ask<caf::actor>(inner_hdl, start_child_atom::value, worker("dyn", log));
  REQUIRE(r.value);
  auto leaf = child(inner_hdl, "leaf");
  caf::anon_send(leaf, die_atom::value, crash()); // intensity 0: the inner supervisor gives up
  run();
  CHECK(is_dead(inner_hdl));
  auto inner2 = child(sup, "inner");
  REQUIRE(inner2);
  CHECK(inner2 != inner_hdl);
  CHECK(child(inner2, "leaf"));
  CHECK_FALSE(child(inner2, "dyn")); // dynamically added grandchildren are not recreated
  CHECK(child(sup, "top") == top);
}

// 28. significant_temporary / significant_transient / nonsignificant_*
SCENARIO_METHOD(fixture, "significant children that end by themselves trigger auto shutdown",
                "[actors][supervisor]") {
  auto sig = [&](std::string id, restart_type t) {
    auto s = worker(std::move(id), log, t);
    s.significant = true;
    return s;
  };
  GIVEN("any_significant and a significant temporary child") {
    auto f = flags(strategy::one_for_one, 5);
    f.shutdown_mode = auto_shutdown::any_significant;
    auto sup = start_sup(f, {sig("t", restart_type::temporary), worker("other", log)});
    kill_child(sup, "t", crash());
    CHECK(is_dead(sup));
  }
  GIVEN("all_significant and two significant transient children") {
    auto f = flags(strategy::one_for_one, 5);
    f.shutdown_mode = auto_shutdown::all_significant;
    auto sup = start_sup(f, {sig("x", restart_type::transient), sig("y", restart_type::transient)});
    kill_child(sup, "x", caf::error{});
    CHECK(alive(sup));
    kill_child(sup, "y", crash()); // a crash restarts: no trigger
    CHECK(alive(sup));
    kill_child(sup, "y", caf::exit_reason::user_shutdown);
    caf::error reason;
    REQUIRE(is_dead(sup, &reason));
    CHECK(reason == caf::exit_reason::user_shutdown);
  }
  GIVEN("a non-significant child") {
    auto f = flags(strategy::one_for_one, 5);
    f.shutdown_mode = auto_shutdown::any_significant;
    auto sup = start_sup(f, {worker("n", log, restart_type::temporary)});
    kill_child(sup, "n", caf::error{});
    CHECK(alive(sup));
  }
  GIVEN("a significant child stopped with terminate_child") {
    auto f = flags(strategy::one_for_one, 5);
    f.shutdown_mode = auto_shutdown::any_significant;
    auto sup = start_sup(f, {sig("t", restart_type::transient)});
    REQUIRE(ask<caf::ok_atom>(sup, terminate_child_atom::value, std::string{"t"}).value);
    CHECK(alive(sup));
  }
}

// 29. significant_bystander / significant_escalation
SCENARIO_METHOD(fixture, "auto shutdown travels up only through significant sub-supervisors",
                "[actors][supervisor]") {
  auto f_inner = flags(strategy::one_for_all, 5);
  f_inner.shutdown_mode = auto_shutdown::any_significant;
  auto leaf = worker("leaf", log, restart_type::transient);
  leaf.significant = true;
  auto f_top = flags(strategy::one_for_one, 5);
  f_top.shutdown_mode = auto_shutdown::any_significant;
  GIVEN("a significant transient sub-supervisor") {
    auto inner = supervisor_child("inner", f_inner, {leaf, worker("sib", log)},
                                  restart_type::transient, true);
    auto sup = start_sup(f_top, {inner});
    WHEN("a sibling's crash stops the significant leaf as a bystander") {
      kill_child(child(sup, "inner"), "sib", crash());
      THEN("nothing shuts down") {
        CHECK(alive(sup));
      }
    }
    WHEN("the leaf ends normally") {
      kill_child(child(sup, "inner"), "leaf", caf::error{});
      THEN("the inner supervisor and then the top one shut down") {
        CHECK(is_dead(sup));
      }
    }
  }
  GIVEN("a non-significant sub-supervisor") {
    auto inner = supervisor_child("inner", f_inner, {leaf}, restart_type::transient, false);
    auto f = flags(strategy::one_for_one, 5);
    auto sup = start_sup(f, {inner});
    auto inner_hdl = child(sup, "inner");
    kill_child(inner_hdl, "leaf", caf::error{});
    CHECK(is_dead(inner_hdl));
    CHECK(alive(sup));
  }
}

// 30. sup_flags / child_specs_map
SCENARIO("invalid flags and child specs are refused with a reason", "[actors][supervisor]") {
  auto log = std::make_shared<test_log>();
  auto f = flags(strategy::one_for_one);
  f.intensity = -1;
  CHECK(code_of(validate(f, {})) == errc::bad_flags);
  f = flags(strategy::one_for_one);
  f.period = 0s;
  CHECK(code_of(validate(f, {})) == errc::bad_flags);
  f = flags(strategy::one_for_one);
  CHECK(code_of(validate(f, {worker("a", log), worker("a", log)})) == errc::duplicate_child);
  auto sig = worker("s", log, restart_type::permanent);
  sig.significant = true;
  f.shutdown_mode = auto_shutdown::any_significant;
  CHECK(code_of(validate(f, {sig})) == errc::bad_child_spec); // significant + permanent
  sig.restart = restart_type::transient;
  f.shutdown_mode = auto_shutdown::never;
  CHECK(code_of(validate(f, {sig})) == errc::bad_child_spec); // significant + never
  f = flags(strategy::simple_one_for_one);
  CHECK(code_of(validate(f, {})) == errc::bad_child_spec);
  CHECK(code_of(validate(f, {worker("a", log), worker("b", log)})) == errc::bad_child_spec);
  f.shutdown_mode = auto_shutdown::any_significant;
  CHECK(code_of(validate(f, {worker("a", log, restart_type::transient)})) == errc::bad_flags);
  CHECK_FALSE(validate(flags(strategy::rest_for_one), {worker("a", log), worker("b", log)}));
}

SCENARIO_METHOD(fixture,
                "a static child that fails to start fails the supervisor after stopping the others",
                "[actors][supervisor]") {
  log->fail_start = {"b"};
  auto sup = spawn_supervisor(sys, flags(strategy::one_for_one),
                              {worker("a", log), worker("b", log)});
  REQUIRE(sup);
  auto r = ask<caf::ok_atom>(*sup, start_atom::value);
  CHECK(code_of(r.err) == errc::start_failed);
  CHECK_THAT(text_of(r.err), Catch::Contains("child b failed to start"));
  CHECK(is_dead(*sup));
  REQUIRE(log->stopped.size() == 1);
  CHECK(log->stopped[0].first == "a");
}

SCENARIO_METHOD(fixture, "a start function that hands over another child's actor fails to start",
                "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one), {worker("a", log)});
  child_spec copycat;
  copycat.id = "b";
  copycat.start = [](start_context& ctx) -> caf::expected<caf::actor> { return ctx.sibling("a"); };
  auto r = ask<caf::actor>(sup, start_child_atom::value, copycat);
  CHECK(code_of(r.err) == errc::start_failed);
  CHECK_THAT(text_of(r.err), Catch::Contains("returned the actor of child a"));
  // "a" is still supervised: its crash restarts it.
  auto first = child(sup, "a");
  kill_child(sup, "a", crash());
  CHECK(child(sup, "a"));
  CHECK(child(sup, "a") != first);
}

SCENARIO_METHOD(fixture, "a child that never answers the start handshake fails after the timeout",
                "[actors][supervisor]") {
  auto silent = worker("silent", log);
  silent.start = [](start_context& ctx) -> caf::expected<caf::actor> {
    return ctx.self->spawn(
      [](caf::event_based_actor* self, int) -> caf::behavior {
        self->set_default_handler(caf::skip); // never answers start_atom
        return {[](int) {}};
      },
      0); // an argument: CAF 0.17 dereferences a null tuple for argument-less function actors
  };
  auto f = flags(strategy::one_for_one);
  f.start_timeout = 3s;
  auto sup = spawn_supervisor(sys, f, {silent});
  REQUIRE(sup);
  run();
  CHECK_FALSE(is_dead(*sup));
  advance(3s);
  CHECK(is_dead(*sup));
}

// A child that answers its start handshake `delay` after it was asked.
child_spec late_worker(std::string id, std::chrono::milliseconds delay,
                       std::shared_ptr<std::vector<std::string>> answered) {
  child_spec spec;
  spec.id = id;
  spec.start = [id, delay, answered](start_context& ctx) -> caf::expected<caf::actor> {
    return ctx.self->spawn(
      [id, delay, answered](caf::event_based_actor* self, int) -> caf::behavior {
        auto rp = std::make_shared<caf::response_promise>();
        return {
          [self, delay, rp](start_atom) {
            *rp = self->make_response_promise();
            self->delayed_send(self, delay, late_atom::value);
            return *rp;
          },
          [id, answered, rp](late_atom) {
            answered->push_back(id);
            rp->deliver(caf::ok_atom::value);
          },
        };
      },
      0);
  };
  return spec;
}

SCENARIO_METHOD(fixture, "each start handshake has its own timeout, counted from when it was sent",
                "[actors][supervisor]") {
  // One start timer serves all handshakes: a answers at 2 s; b, asked then, has until 5 s, not
  // until a's deadline at 3 s.
  auto answered = std::make_shared<std::vector<std::string>>();
  auto f = flags(strategy::one_for_one);
  f.start_timeout = 3s;
  auto sup = spawn_supervisor(sys, f, {late_worker("a", 2000ms, answered),
                                       late_worker("b", 2500ms, answered),
                                       late_worker("c", 3500ms, answered)});
  REQUIRE(sup);
  run();
  advance(4500ms); // a at 2 s, b at 4.5 s (deadline 5 s)
  CHECK(*answered == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(is_dead(*sup));
  advance(3s); // c was asked at 4.5 s and answers at 8 s, after its deadline at 7.5 s
  CHECK(*answered == std::vector<std::string>{"a", "b"});
  CHECK(is_dead(*sup));
}

SCENARIO_METHOD(fixture, "an answered parallel start is not failed by the start timer later",
                "[actors][supervisor]") {
  auto answered = std::make_shared<std::vector<std::string>>();
  auto f = flags(strategy::one_for_one);
  f.start_timeout = 3s;
  f.parallel_start = true;
  f.start_window = 2;
  auto sup = spawn_supervisor(sys, f, {late_worker("a", 1000ms, answered),
                                       late_worker("b", 2900ms, answered),
                                       late_worker("c", 2000ms, answered)});
  REQUIRE(sup);
  run();
  advance(3100ms); // a at 1 s, c (asked at 1 s) at 3 s, b at 2.9 s
  CHECK(*answered == std::vector<std::string>{"a", "b", "c"});
  advance(10s);
  CHECK_FALSE(is_dead(*sup));
  CHECK(child(*sup, "c"));
}

SCENARIO_METHOD(fixture, "restart backoff doubles the delay and resets after stability",
                "[actors][supervisor]") {
  auto a = worker("a", log);
  a.backoff.min = 1s;
  a.backoff.max = 4s;
  a.backoff.random_factor = 0;
  a.backoff.reset_after = 30s;
  auto sup = start_sup(flags(strategy::one_for_one, 100, 3600s), {a});
  auto expect_restart_after = [&](std::chrono::milliseconds delay) {
    const auto before = log->started.size();
    kill_child(sup, "a", crash());
    advance(delay - 1ms);
    CHECK(log->started.size() == before);
    advance(1ms);
    CHECK(log->started.size() == before + 1);
  };
  expect_restart_after(1s);
  expect_restart_after(2s);
  expect_restart_after(4s);
  expect_restart_after(4s); // capped at max
  advance(30s);             // stable for reset_after
  expect_restart_after(1s);
}

SCENARIO_METHOD(fixture, "management requests wait while a start is under way",
                "[actors][supervisor]") {
  auto slow = worker("slow", log);
  auto sup = spawn_supervisor(sys, flags(strategy::one_for_one), {slow});
  REQUIRE(sup);
  // Ask before the handshake has run: the request waits in the mailbox and is answered afterwards.
  std::optional<child_counts> n;
  spawn_fn([&, s = *sup](caf::event_based_actor* self) {
    self->request(s, caf::infinite, count_children_atom::value)
      .then([&](child_counts c) { n = c; }, [](caf::error&) {});
  });
  run();
  REQUIRE(n);
  CHECK(n->active == 1);
}

SCENARIO_METHOD(fixture, "children die with a killed supervisor", "[actors][supervisor]") {
  auto sup = start_sup(flags(strategy::one_for_one), {worker("a", log)});
  auto a = child(sup, "a");
  caf::anon_send_exit(sup, caf::exit_reason::kill);
  run();
  caf::error reason;
  REQUIRE(is_dead(a, &reason));
  CHECK(reason == caf::exit_reason::kill);
}

SCENARIO_METHOD(fixture, "under rest_for_one the failed child's backoff delays the group's restart",
                "[actors][supervisor]") {
  auto b = worker("b", log);
  b.backoff.min = 2s;
  b.backoff.max = 2s;
  b.backoff.random_factor = 0;
  auto sup = start_sup(flags(strategy::rest_for_one, 10, 60s),
                       {worker("a", log), b, worker("c", log)});
  log->started.clear();
  kill_child(sup, "b", crash());
  CHECK(log->started.empty()); // c was stopped at once; nothing starts before the backoff
  CHECK_FALSE(child(sup, "c"));
  advance(1999ms);
  CHECK(log->started.empty());
  advance(1ms);
  CHECK(log->started == std::vector<std::string>{"b", "c"});
}

// issue 11, hole 1: giving up is an abnormal exit that escalates.
SCENARIO_METHOD(fixture, "a sub-supervisor that gives up is restarted by its parent's strategy",
                "[actors][supervisor]") {
  auto f_inner = flags(strategy::rest_for_one, 0);
  f_inner.shutdown_mode = auto_shutdown::any_significant;
  auto leaf = worker("leaf", log, restart_type::transient);
  leaf.significant = true;
  // A finite shard group: transient and significant under an all_significant parent.
  auto inner = supervisor_child("inner", f_inner, {leaf}, restart_type::transient, true);
  auto f_top = flags(strategy::one_for_all, 1);
  f_top.shutdown_mode = auto_shutdown::all_significant;
  auto sup = start_sup(f_top, {inner, worker("other", log)});
  auto inner1 = child(sup, "inner");
  auto other1 = child(sup, "other");
  REQUIRE(inner1);
  REQUIRE(other1);
  WHEN("the leaf crashes and the inner supervisor (intensity 0) gives up") {
    kill_child(inner1, "leaf", crash());
    THEN("it exits with restart_limit_reached and one_for_all restarts the whole group") {
      caf::error reason;
      REQUIRE(is_dead(inner1, &reason));
      CHECK(code_of(reason) == errc::restart_limit_reached);
      REQUIRE(alive(sup)); // not taken as a normal end of the significant child
      auto inner2 = child(sup, "inner");
      CHECK(inner2);
      CHECK(inner2 != inner1);
      CHECK(child(sup, "other"));
      CHECK(child(sup, "other") != other1);
    }
    AND_WHEN("it gives up again within the parent's period") {
      kill_child(child(sup, "inner"), "leaf", crash());
      THEN("the parent gives up in turn, with restart_limit_reached") {
        caf::error reason;
        REQUIRE(is_dead(sup, &reason));
        CHECK(code_of(reason) == errc::restart_limit_reached);
        CHECK_THAT(text_of(reason), Catch::Contains("child inner"));
      }
    }
  }
}

SCENARIO_METHOD(fixture, "a significant temporary child that gives up does not end its parent",
                "[actors][supervisor]") {
  auto f_inner = flags(strategy::one_for_one, 0);
  auto inner = supervisor_child("inner", f_inner, {worker("leaf", log)}, restart_type::temporary,
                                true);
  auto f_top = flags(strategy::one_for_one, 5);
  f_top.shutdown_mode = auto_shutdown::any_significant;
  auto done = worker("done", log, restart_type::transient);
  done.significant = true;
  auto sup = start_sup(f_top, {inner, done});
  kill_child(child(sup, "inner"), "leaf", crash()); // inner gives up; it is temporary: removed
  REQUIRE(alive(sup)); // a failure is not an end of a significant child
  CHECK(counts(sup).specs == 1);
  kill_child(sup, "done", caf::error{}); // the last significant child ends normally
  caf::error reason;
  REQUIRE(is_dead(sup, &reason));
  CHECK(reason == caf::exit_reason::user_shutdown);
}

SCENARIO_METHOD(fixture,
                "under all_significant, a temporary significant child that gives up last lets its "
                "parent end",
                "[actors][supervisor]") {
  auto f_inner = flags(strategy::one_for_one, 0);
  auto inner = supervisor_child("inner", f_inner, {worker("leaf", log)}, restart_type::temporary,
                                true);
  auto f_top = flags(strategy::one_for_one, 5);
  f_top.shutdown_mode = auto_shutdown::all_significant;
  auto done = worker("done", log, restart_type::transient);
  done.significant = true;
  auto sup = start_sup(f_top, {inner, done});
  kill_child(sup, "done", caf::error{});            // one significant child ends normally
  REQUIRE(alive(sup));                              // the other still runs
  kill_child(child(sup, "inner"), "leaf", crash()); // inner gives up; it is temporary: removed
  caf::error reason;
  REQUIRE(is_dead(sup, &reason)); // nothing significant is left: no hang
  CHECK(reason == caf::exit_reason::user_shutdown);
}

// issue 11, hole 2: a finite child that ends at once is not a start failure.
SCENARIO_METHOD(fixture,
                "static significant children that end before their handshake reply start fine",
                "[actors][supervisor]") {
  auto f = flags(strategy::one_for_one, 1);
  f.shutdown_mode = auto_shutdown::all_significant;
  std::vector<child_spec> specs;
  for (auto* id : {"a", "b", "c"}) {
    log->end_in_init.insert(id);
    auto s = worker(id, log, restart_type::transient);
    s.significant = true;
    specs.push_back(std::move(s));
  }
  auto sup = spawn_supervisor(sys, f, std::move(specs));
  REQUIRE(sup);
  std::optional<caf::error> start_reply;
  spawn_fn([&, s = *sup](caf::event_based_actor* self) {
    self->request(s, caf::infinite, start_atom::value)
      .then([&](caf::ok_atom) { start_reply = caf::error{}; },
            [&](caf::error& e) { start_reply = std::move(e); });
  });
  run();
  CHECK(log->started == std::vector<std::string>{"a", "b", "c"}); // every child got its start
  REQUIRE(start_reply);
  CHECK_FALSE(*start_reply);
  caf::error reason;
  REQUIRE(is_dead(*sup, &reason));
  CHECK(reason == caf::exit_reason::user_shutdown); // all significant children ended: clean
  CHECK(reason.context().empty());
}

SCENARIO_METHOD(fixture, "finite groups whose shard ends during the start sequence end cleanly",
                "[actors][supervisor]") {
  auto f_group = flags(strategy::rest_for_one, 1);
  f_group.shutdown_mode = auto_shutdown::any_significant;
  std::vector<child_spec> groups;
  for (auto* id : {"g1", "g2", "g3"}) {
    const auto leaf_id = std::string{id} + "/shard";
    log->end_in_init.insert(leaf_id);
    auto leaf = worker(leaf_id, log, restart_type::transient);
    leaf.significant = true;
    groups.push_back(supervisor_child(id, f_group, {worker(std::string{id} + "/feeder", log), leaf},
                                      restart_type::transient, true));
  }
  auto f = flags(strategy::one_for_one, 1);
  f.shutdown_mode = auto_shutdown::all_significant;
  auto sup = spawn_supervisor(sys, f, std::move(groups));
  REQUIRE(sup);
  auto r = ask<caf::ok_atom>(*sup, start_atom::value);
  CHECK_FALSE(r.err);
  run();
  CHECK(log->started.size() == 6);
  caf::error reason;
  REQUIRE(is_dead(*sup, &reason));
  CHECK(reason == caf::exit_reason::user_shutdown);
  CHECK(reason.context().empty());
}

SCENARIO_METHOD(fixture, "a start_child sent during the start sequence waits for it",
                "[actors][supervisor]") {
  auto sup = spawn_supervisor(sys, flags(strategy::one_for_one), {worker("a", log)});
  REQUIRE(sup);
  // Sent before the handshake of "a" has run: the supervisor is busy, the request waits.
  std::optional<caf::actor> added;
  spawn_fn([&, s = *sup](caf::event_based_actor* self) {
    self->request(s, caf::infinite, start_child_atom::value, worker("b", log))
      .then([&](caf::actor hdl) { added = hdl; }, [](caf::error&) {});
  });
  run();
  REQUIRE(added);
  CHECK(*added == child(*sup, "b"));
  CHECK(log->started == std::vector<std::string>{"a", "b"});
  WHEN("a group restart is under way") {
    auto f = flags(strategy::one_for_all, 5);
    log->started.clear();
    auto sup2 = start_sup(f, {worker("x", log), worker("y", log)});
    std::optional<caf::error> deleted;
    caf::anon_send(child(sup2, "x"), die_atom::value, crash());
    spawn_fn([&](caf::event_based_actor* self) {
      self->request(sup2, caf::infinite, delete_child_atom::value, std::string{"y"})
        .then([&](caf::ok_atom) { deleted = caf::error{}; },
              [&](caf::error& e) { deleted = std::move(e); });
    });
    run();
    THEN("a management request is answered after it, against the restarted children") {
      REQUIRE(deleted);
      CHECK(code_of(*deleted) == errc::running);
      CHECK(log->started == std::vector<std::string>{"x", "y", "x", "y"});
    }
  }
}
