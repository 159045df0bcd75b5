// tests/support/deterministic_fixture.hpp - an actor system on CAF's deterministic test scheduler,
// usable from Catch2.
//
// Everything runs on the test thread: `run()` drains every mailbox, `advance(d)` moves the simulated
// clock (firing timers, delayed sends and request timeouts) and drains again. No sleeps, no threads.
// CAF's own dsl.hpp cannot be used under Catch2 (it dereferences CAF's test engine), hence this.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <shardflow/actors/messages.hpp>

namespace shardflow::testing {

struct deterministic_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  deterministic_fixture()
    : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // nop
  }

  ~deterministic_fixture() {
    sched.run();
    sys.await_actors_before_shutdown(false);
  }

  static caf::actor_system_config& init(caf::actor_system_config& x) {
    x.set("scheduler.policy", caf::atom("testing"));
    x.set("logger.file-verbosity", caf::atom("quiet"));
    x.set("logger.console-verbosity", caf::atom("quiet"));
    shardflow::configure(x);
    return x;
  }

  /// Spawns a function-based actor running `f(self)`. CAF 0.17 dereferences a null argument tuple
  /// when a function actor takes no arguments (UBSan flags it), so `f` travels as the argument.
  template <class F>
  caf::actor spawn_fn(F f) {
    return sys.spawn([](caf::event_based_actor* self, F g) { return g(self); }, std::move(f));
  }

  /// Drains every mailbox.
  void run() {
    sched.run();
  }

  /// Moves the simulated clock by `d`, firing what falls due, and drains after each step.
  void advance(caf::timespan d) {
    // Step in small increments so that timers scheduled by fired timers also fire in order.
    const auto step = std::chrono::milliseconds(1);
    while (d > caf::timespan{0}) {
      auto s = std::min<caf::timespan>(d, step);
      sched.advance_time(s);
      sched.run();
      d -= s;
    }
  }

  /// The reply of a request, or its error.
  template <class T>
  struct answer {
    std::optional<T> value;
    caf::error err;
  };

  /// Sends a request to `dst` from a fresh actor, drains, and returns the reply (or error).
  template <class T, class... Ts>
  answer<T> ask(const caf::actor& dst, Ts... xs) {
    answer<T> result;
    auto* out = &result;
    spawn_fn([=](caf::event_based_actor* self) {
      self->request(dst, caf::infinite, xs...)
        .then([out](T& x) { out->value = std::move(x); },
              [out](caf::error& e) { out->err = std::move(e); });
    });
    sched.run();
    return result;
  }

  /// Returns whether `hdl` has terminated (its exit reason is in `reason`).
  bool is_dead(const caf::actor& hdl, caf::error* reason = nullptr) {
    std::optional<caf::error> result;
    auto* out = &result;
    spawn_fn([=](caf::event_based_actor* self) -> caf::behavior {
      self->monitor(hdl);
      self->set_down_handler([out, self](caf::down_msg& m) {
        *out = m.reason;
        self->quit();
      });
      // While `hdl` lives, this observer waits; the fixture does not wait for it at the end.
      return {[](caf::unit_t) {}};
    });
    sched.run();
    if (result && reason)
      *reason = *result;
    return result.has_value();
  }
};

} // namespace shardflow::testing
