#include <shardflow/actors/supervisor.hpp>

#include <algorithm>
#include <deque>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <caf/all.hpp>
#include <fmt/format.h>

namespace shardflow {

namespace {

// -- state -----------------------------------------------------------------------------------------

enum class child_state : std::uint8_t { stopped, starting, running, terminating, restarting };

struct child_rec {
  std::uint64_t key = 0; // stable across incarnations; ids are absent under simple_one_for_one
  child_spec spec;
  caf::message args;
  caf::actor hdl;
  std::uint64_t gen = 0; // of the current (or last) incarnation
  child_state st = child_state::stopped;
  unsigned restarts_in_row = 0;
};

// Why a start step runs; it decides what a failed start means.
enum class purpose : std::uint8_t { initial, api_start, api_restart, restart };

struct step {
  enum class kind : std::uint8_t { start, terminate, terminate_all, wait, started_marker, quit };
  kind what;
  std::uint64_t key = 0;
  purpose why = purpose::restart;
  caf::response_promise rp;
  std::chrono::nanoseconds delay{0}; // for `wait`: the backoff of a group restart
};

struct supervisor_state {
  static inline const char* name = "shardflow.supervisor";

  supervisor_flags flags;
  std::vector<child_rec> children; // in start order, which is the order of their keys
  // The key of the child each monitored actor was started as (entries go when its down arrives).
  std::unordered_map<caf::actor_id, std::uint64_t> keys_by_actor;
  std::size_t alive_hint = 0; // where check_auto_shutdown last found a live significant child
  child_spec template_spec;   // simple_one_for_one
  restart_window window{1, std::chrono::seconds{5}};
  std::deque<step> steps;
  bool waiting = false;   // the front step waits for an event
  bool deferring = false; // management requests wait while steps run
  std::uint64_t next_key = 0;
  std::uint64_t next_gen = 0;
  std::uint64_t parallel_epoch = 0;
  std::uint64_t wait_token = 0; // of the `wait` step under way
  std::size_t parallel_outstanding = 0;
  bool started = false;
  caf::error start_error;
  std::vector<caf::response_promise> start_waiters;
  bool shutting_down = false;
  caf::error final_reason;
  struct pending_exit {
    std::uint64_t key;
    std::uint64_t gen;
    caf::error reason;
  };
  std::vector<pending_exit> pending_exits;
  caf::actor_addr parent;
  std::minstd_rand rng; // backoff jitter: 8 bytes (a Mersenne twister was 2.5 KiB per supervisor)
  caf::error last_start_error; // why the last restart failed to start, for the give-up message
};

using sup_ptr = caf::stateful_actor<supervisor_state>*;

bool simple(sup_ptr self) {
  return self->state.flags.how == strategy::simple_one_for_one;
}

// Lookups by key and by actor are O(log n) and O(1): a root supervisor may have 10,000 children
// that all start, exit and are looked up once each.
child_rec* find_key(sup_ptr self, std::uint64_t key) {
  auto& xs = self->state.children;
  auto i = std::lower_bound(xs.begin(), xs.end(), key,
                            [](const child_rec& c, std::uint64_t k) { return c.key < k; });
  return i != xs.end() && i->key == key ? &*i : nullptr;
}

child_rec* find_id(sup_ptr self, const std::string& id) {
  for (auto& c : self->state.children)
    if (c.spec.id == id)
      return &c;
  return nullptr;
}

// The child whose current incarnation is `addr`, if any.
child_rec* find_addr(sup_ptr self, const caf::actor_addr& addr) {
  const auto& keys = self->state.keys_by_actor;
  auto i = keys.find(addr.id());
  if (i == keys.end())
    return nullptr;
  auto* c = find_key(self, i->second);
  return c != nullptr && c->hdl && c->hdl.address() == addr ? c : nullptr;
}

void erase_key(sup_ptr self, std::uint64_t key) {
  auto& xs = self->state.children;
  xs.erase(std::remove_if(xs.begin(), xs.end(), [key](const child_rec& c) { return c.key == key; }),
           xs.end());
}

shutdown_spec shutdown_of(const child_spec& spec) {
  if (spec.shutdown)
    return *spec.shutdown;
  return spec.kind == child_kind::supervisor ? shutdown_spec::infinity()
                                             : shutdown_spec::after(std::chrono::seconds(5));
}

exit_kind classify(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal)
    return exit_kind::normal;
  if (reason == caf::exit_reason::user_shutdown)
    return exit_kind::shutdown;
  return exit_kind::abnormal;
}

// Whether a child's exit reason says it gave up (a sub-supervisor over its restart intensity).
bool gave_up(const caf::error& reason) {
  return reason
         && code_of(reason) == errc::restart_limit_reached; // code_of needs a non-empty error
}

std::string describe(sup_ptr self, const caf::error& reason) {
  if (!reason)
    return "normal";
  auto text = self->system().render(reason);
  return text.empty() ? caf::to_string(reason) : text;
}

std::string name_of(const child_rec& c) {
  return c.spec.id.empty() ? fmt::format("#{}", c.key) : c.spec.id;
}

// -- the step machine -------------------------------------------------------------------------------

// What executing a step did: finished it, left it waiting for an event, or handed it over to code
// that already removed it and continued the machine.
enum class outcome : std::uint8_t { done, wait, handed_over };

void run_steps(sup_ptr self);
void begin_shutdown(sup_ptr self, caf::error reason);
void handle_exit(sup_ptr self, child_rec& c, const caf::error& reason);
caf::behavior make_behavior(sup_ptr self);

void enqueue(sup_ptr self, step s) {
  self->state.steps.push_back(std::move(s));
}

void step_done(sup_ptr self) {
  auto& st = self->state;
  if (!st.steps.empty())
    st.steps.pop_front();
  st.waiting = false;
  run_steps(self);
}

void schedule_backoff_reset(sup_ptr self, const child_rec& c) {
  const auto& b = c.spec.backoff;
  if (b.min.count() <= 0)
    return;
  auto after = b.reset_after.count() > 0 ? b.reset_after : (b.min + std::max(b.max, b.min)) / 2;
  self->delayed_send(self, after, reset_backoff_atom::value, c.key, c.gen,
                     static_cast<std::uint64_t>(c.restarts_in_row));
}

template <class F>
void on_started(sup_ptr self, child_rec& c, F then) {
  c.st = child_state::running;
  auto& front = self->state.steps.front();
  if (front.why == purpose::api_start || front.why == purpose::api_restart)
    front.rp.deliver(c.hdl);
  schedule_backoff_reset(self, c);
  then();
  step_done(self);
}

void on_started(sup_ptr self, child_rec& c) {
  on_started(self, c, [] {});
}

void start_failed(sup_ptr self, child_rec& c, const caf::error& reason) {
  auto& st = self->state;
  if (c.hdl) {
    self->send_exit(c.hdl, caf::exit_reason::kill);
    c.hdl = caf::actor{};
  }
  c.st = child_state::stopped;
  auto front = std::move(st.steps.front());
  st.steps.pop_front();
  st.waiting = false;
  auto why = make_error(errc::start_failed, fmt::format("child {} failed to start: {}", name_of(c),
                                                        describe(self, reason)));
  switch (front.why) {
    case purpose::initial:
      // OTP: stop the children started so far in reverse order, then fail.
      st.start_error = why;
      begin_shutdown(self, why);
      return;
    case purpose::api_start:
      front.rp.deliver(why);
      erase_key(self, c.key); // no spec is saved
      break;
    case purpose::api_restart:
      front.rp.deliver(why);
      break;
    case purpose::restart: {
      // Retry asynchronously (counted by the intensity); meanwhile the rest of this restart waits.
      // The other children this restart would have started stay stopped (OTP: undefined); the retry
      // starts them.
      c.st = child_state::restarting;
      std::deque<step> kept;
      for (auto& s : st.steps)
        if (!(s.what == step::kind::start && s.why == purpose::restart)
            && s.what != step::kind::wait)
          kept.push_back(std::move(s));
      st.steps.swap(kept);
      st.last_start_error = why;
      self->send(self, try_again_atom::value, c.key, c.gen);
      break;
    }
  }
  run_steps(self);
}

outcome exec_start(sup_ptr self, step& s) {
  auto* c = find_key(self, s.key);
  if (c == nullptr || c->hdl)
    return outcome::done; // gone, or already running again
  auto& st = self->state;
  if (s.why == purpose::restart && c->spec.restart == restart_type::temporary) {
    erase_key(self, c->key); // a temporary bystander of a group restart is dropped, not restarted
    return outcome::done;
  }
  start_context ctx{self, c->args, [self](const std::string& id) {
                      auto* sib = find_id(self, id);
                      return sib && sib->st == child_state::running ? sib->hdl : caf::actor{};
                    }};
  caf::expected<caf::actor> res{caf::actor{}};
  try {
    res = c->spec.start(ctx);
  } catch (const std::exception& e) {
    res = make_error(errc::start_failed, e.what());
  }
  c->gen = ++st.next_gen;
  if (!res) {
    st.waiting = true;
    start_failed(self, *c, res.error());
    return outcome::handed_over;
  }
  auto reply = [&s](const caf::actor& hdl) {
    if (s.why == purpose::api_start || s.why == purpose::api_restart)
      s.rp.deliver(hdl);
  };
  if (!*res) { // OTP's ignore
    c->st = child_state::stopped;
    reply(caf::actor{});
    if (c->spec.restart == restart_type::temporary)
      erase_key(self, c->key);
    return outcome::done;
  }
  if (auto* other = find_addr(self, res->address())) {
    // One actor, one child: a start function starts an actor, it does not hand over a running one.
    st.waiting = true;
    start_failed(self, *c,
                 make_error(errc::start_failed, fmt::format("its start function returned the actor "
                                                            "of child {}",
                                                            name_of(*other))));
    return outcome::handed_over;
  }
  c->hdl = *res;
  self->monitor(c->hdl);
  st.keys_by_actor[c->hdl.id()] = c->key;
  if (!c->spec.handshake) {
    c->st = child_state::running;
    reply(c->hdl);
    schedule_backoff_reset(self, *c);
    return outcome::done;
  }
  c->st = child_state::starting;
  const auto key = c->key;
  const auto gen = c->gen;
  self->request(c->hdl, st.flags.start_timeout, start_atom::value)
    .then(
      [self, key, gen](caf::ok_atom) {
        auto* c = find_key(self, key);
        if (c && c->gen == gen && c->st == child_state::starting)
          on_started(self, *c);
      },
      [self, key, gen](caf::error& err) {
        if (err == caf::sec::request_receiver_down)
          return; // it is gone: its down message (monitored) says whether it failed or ended
        auto* c = find_key(self, key);
        if (c && c->gen == gen && c->st == child_state::starting)
          start_failed(self, *c, err);
      });
  return outcome::wait;
}

void send_stop(sup_ptr self, child_rec& c, bool own_timer) {
  c.st = child_state::terminating;
  const auto spec = shutdown_of(c.spec);
  switch (spec.how) {
    case shutdown_spec::mode::brutal_kill:
      self->send_exit(c.hdl, caf::exit_reason::kill);
      break;
    case shutdown_spec::mode::timeout:
      self->send_exit(c.hdl, caf::exit_reason::user_shutdown);
      if (own_timer)
        self->delayed_send(self, spec.timeout, shutdown_timeout_atom::value, c.key, c.gen);
      break;
    case shutdown_spec::mode::infinity:
      self->send_exit(c.hdl, caf::exit_reason::user_shutdown);
      break;
  }
}

// Called when the child of a terminate step is down (or was not running).
void terminated(sup_ptr self, step& s, child_rec* c) {
  if (c != nullptr && s.why != purpose::restart) {
    // terminate_child: a temporary child's spec goes; under simple_one_for_one every child's does.
    if (c->spec.restart == restart_type::temporary || simple(self))
      erase_key(self, c->key);
  }
  if (s.rp.pending())
    s.rp.deliver(caf::ok_atom::value);
}

outcome exec_terminate(sup_ptr self, step& s) {
  auto* c = find_key(self, s.key);
  if (c == nullptr || !c->hdl) {
    if (c != nullptr && c->st != child_state::restarting)
      c->st = child_state::stopped;
    terminated(self, s, c);
    return outcome::done;
  }
  send_stop(self, *c, true);
  return outcome::wait;
}

outcome exec_terminate_all(sup_ptr self) {
  auto& st = self->state;
  st.parallel_outstanding = 0;
  ++st.parallel_epoch;
  for (auto& c : st.children) {
    if (!c.hdl)
      continue;
    send_stop(self, c, false);
    ++st.parallel_outstanding;
  }
  if (st.parallel_outstanding == 0)
    return outcome::done;
  const auto spec = shutdown_of(st.template_spec);
  if (spec.how == shutdown_spec::mode::timeout)
    self->delayed_send(self, spec.timeout, shutdown_timeout_atom::value, std::uint64_t{0},
                       st.parallel_epoch);
  return outcome::wait;
}

void leave_deferring(sup_ptr self) {
  auto& st = self->state;
  if (!st.deferring)
    return;
  st.deferring = false;
  // A new behavior makes CAF look at the requests skipped meanwhile.
  self->become(make_behavior(self));
  auto pending = std::move(st.pending_exits);
  st.pending_exits.clear();
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (st.deferring) {
      // The exit just handled started a sequence (a group restart may take care of the others):
      // keep the rest for after it, when their generations tell whether they still matter.
      st.pending_exits.insert(st.pending_exits.end(),
                              pending.begin() + static_cast<std::ptrdiff_t>(i), pending.end());
      return;
    }
    auto& p = pending[i];
    auto* c = find_key(self, p.key);
    if (c != nullptr && c->gen == p.gen && !c->hdl && c->st == child_state::stopped)
      handle_exit(self, *c, p.reason);
  }
}

void run_steps(sup_ptr self) {
  auto& st = self->state;
  while (!st.waiting && !st.steps.empty()) {
    st.deferring = true;
    auto& s = st.steps.front();
    auto result = outcome::done;
    switch (s.what) {
      case step::kind::start:
        result = exec_start(self, s);
        break;
      case step::kind::terminate:
        result = exec_terminate(self, s);
        break;
      case step::kind::terminate_all:
        result = exec_terminate_all(self);
        break;
      case step::kind::wait:
        self->delayed_send(self, s.delay, restart_tick_atom::value, std::uint64_t{0},
                           ++st.wait_token);
        result = outcome::wait;
        break;
      case step::kind::started_marker:
        st.started = true;
        for (auto& rp : st.start_waiters)
          rp.deliver(caf::ok_atom::value);
        st.start_waiters.clear();
        break;
      case step::kind::quit:
        for (auto& rp : st.start_waiters)
          rp.deliver(st.start_error ? st.start_error : st.final_reason);
        st.start_waiters.clear();
        st.steps.clear();
        self->quit(st.final_reason);
        return;
    }
    if (result == outcome::wait) {
      st.waiting = true;
      return;
    }
    if (result == outcome::handed_over)
      return;
    st.steps.pop_front();
  }
  if (!st.waiting && st.steps.empty())
    leave_deferring(self);
}

// -- failures and restarts --------------------------------------------------------------------------

void start_after_backoff(sup_ptr self, child_rec& c) {
  const auto n = c.restarts_in_row++;
  std::uniform_real_distribution<double> u{0.0, 1.0};
  const auto delay = backoff_delay(c.spec.backoff, n, u(self->state.rng));
  if (delay.count() <= 0) {
    enqueue(self, step{step::kind::start, c.key, purpose::restart, {}});
    return;
  }
  c.st = child_state::restarting;
  self->delayed_send(self, delay, restart_tick_atom::value, c.key, c.gen);
}

// Group strategies: the failed child's backoff delays the start of the whole group.
void enqueue_group_backoff(sup_ptr self, child_rec& failed) {
  const auto n = failed.restarts_in_row++;
  std::uniform_real_distribution<double> u{0.0, 1.0};
  const auto delay = backoff_delay(failed.spec.backoff, n, u(self->state.rng));
  if (delay.count() > 0) {
    step s{step::kind::wait, failed.key, purpose::restart, {}};
    s.delay = delay;
    enqueue(self, std::move(s));
  }
}

void restart_by_strategy(sup_ptr self, child_rec& failed) {
  auto& st = self->state;
  auto& xs = st.children;
  const auto key = failed.key;
  switch (st.flags.how) {
    case strategy::one_for_one:
    case strategy::simple_one_for_one:
      start_after_backoff(self, failed);
      break;
    case strategy::one_for_all: {
      for (auto i = xs.rbegin(); i != xs.rend(); ++i)
        if (i->key != key)
          enqueue(self, step{step::kind::terminate, i->key, purpose::restart, {}});
      enqueue_group_backoff(self, failed);
      for (auto& c : xs)
        enqueue(self, step{step::kind::start, c.key, purpose::restart, {}});
      break;
    }
    case strategy::rest_for_one: {
      auto pos = std::find_if(xs.begin(), xs.end(), [key](auto& c) { return c.key == key; });
      for (auto i = xs.end(); i != pos + 1;)
        --i, enqueue(self, step{step::kind::terminate, i->key, purpose::restart, {}});
      enqueue_group_backoff(self, *pos);
      for (auto i = pos; i != xs.end(); ++i)
        enqueue(self, step{step::kind::start, i->key, purpose::restart, {}});
      break;
    }
  }
}

bool count_restart(sup_ptr self, const child_rec& c, const caf::error& reason) {
  auto& st = self->state;
  if (st.window.add(self->clock().now()))
    return true;
  if (st.flags.report)
    st.flags.report(fmt::format("giving up: more than {} restarts in {} s (last: child {}: {})",
                                st.flags.intensity, st.flags.period.count(), name_of(c),
                                describe(self, reason)));
  // Abnormal, so that the parent restarts this supervisor or gives up in turn (escalation).
  begin_shutdown(self,
                 make_error(errc::restart_limit_reached,
                            fmt::format("restart limit reached: more than {} restarts in {} s "
                                        "(last: child {}: {})",
                                        st.flags.intensity, st.flags.period.count(), name_of(c),
                                        describe(self, reason))));
  return false;
}

void check_auto_shutdown(sup_ptr self) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  switch (st.flags.shutdown_mode) {
    case auto_shutdown::never:
      return;
    case auto_shutdown::any_significant:
      begin_shutdown(self, caf::exit_reason::user_shutdown);
      return;
    case auto_shutdown::all_significant: {
      // Look from the child found alive last time: with thousands of children ending one by one,
      // rescanning from the start each time would be quadratic.
      const auto n = st.children.size();
      for (std::size_t k = 0; k < n; ++k) {
        const auto i = (st.alive_hint + k) % n;
        const auto& c = st.children[i];
        if (c.spec.significant && (c.hdl || c.st == child_state::restarting)) {
          st.alive_hint = i;
          return;
        }
      }
      begin_shutdown(self, caf::exit_reason::user_shutdown);
      return;
    }
  }
}

void handle_exit(sup_ptr self, child_rec& c, const caf::error& reason) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  const auto decision = decide_restart(c.spec.restart, classify(reason));
  if (decision != restart_decision::restart) {
    const bool significant = c.spec.significant;
    if (decision == restart_decision::remove)
      erase_key(self, c.key);
    // A significant child that gave up did not end: its failure is no reason for a clean stop.
    if (significant && !gave_up(reason))
      check_auto_shutdown(self);
    return;
  }
  if (st.flags.report && classify(reason) == exit_kind::abnormal)
    st.flags.report(fmt::format("child {} failed: {}", name_of(c), describe(self, reason)));
  if (!count_restart(self, c, reason))
    return;
  restart_by_strategy(self, c);
  run_steps(self);
}

void on_down(sup_ptr self, caf::down_msg& msg) {
  auto& st = self->state;
  if (st.parent && msg.source == st.parent) {
    begin_shutdown(self, msg.reason);
    return;
  }
  auto* c = find_addr(self, msg.source);
  st.keys_by_actor.erase(msg.source.id());
  if (c == nullptr)
    return; // a stale incarnation
  switch (c->st) {
    case child_state::starting:
      if (classify(msg.reason) == exit_kind::abnormal) {
        start_failed(self, *c, msg.reason);
      } else {
        // It started and ended before its answer came (a finite child with little to do): not a
        // start failure. Its exit is handled once the sequence is over, like any other.
        on_started(self, *c, [&] {
          c->hdl = caf::actor{};
          c->st = child_state::stopped;
          st.pending_exits.push_back({c->key, c->gen, msg.reason});
        });
      }
      return;
    case child_state::terminating: {
      c->hdl = caf::actor{};
      c->st = child_state::stopped;
      if (st.steps.empty())
        return;
      auto& front = st.steps.front();
      if (front.what == step::kind::terminate_all) {
        if (--st.parallel_outstanding == 0)
          step_done(self);
      } else if (front.what == step::kind::terminate && front.key == c->key) {
        terminated(self, front, c);
        step_done(self);
      }
      return;
    }
    default: {
      c->hdl = caf::actor{};
      c->st = child_state::stopped;
      if (st.deferring) {
        st.pending_exits.push_back({c->key, c->gen, msg.reason});
        return;
      }
      handle_exit(self, *c, msg.reason);
    }
  }
}

void begin_shutdown(sup_ptr self, caf::error reason) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  st.shutting_down = true;
  st.final_reason = std::move(reason);
  // Keep a terminate step that is waiting for its child; drop everything else.
  std::deque<step> kept;
  if (st.waiting && !st.steps.empty()) {
    auto& front = st.steps.front();
    if (front.what == step::kind::terminate || front.what == step::kind::terminate_all) {
      kept.push_back(std::move(front));
    } else {
      // An unanswered start: its late reply must not complete anything; the child is stopped
      // below like the others.
      st.waiting = false;
      if (auto* c = find_key(self, front.key); c && c->st == child_state::starting)
        c->st = child_state::running;
    }
  }
  for (auto& s : st.steps)
    if (s.rp.pending())
      s.rp.deliver(make_error(errc::not_found, "the supervisor is shutting down"));
  st.steps.swap(kept);
  if (simple(self)) {
    enqueue(self, step{step::kind::terminate_all, 0, purpose::restart, {}});
  } else {
    for (auto i = st.children.rbegin(); i != st.children.rend(); ++i)
      if (i->hdl)
        enqueue(self, step{step::kind::terminate, i->key, purpose::restart, {}});
  }
  enqueue(self, step{step::kind::quit, 0, purpose::restart, {}});
  run_steps(self);
}

// -- management API -----------------------------------------------------------------------------------

caf::error check_spec(const child_spec& spec) {
  if (!spec.start)
    return make_error(errc::bad_child_spec, fmt::format("child {} has no start function", spec.id));
  if (spec.significant && spec.restart == restart_type::permanent)
    return make_error(errc::bad_child_spec,
                      fmt::format("child {} is significant and permanent (bad_combination)",
                                  spec.id));
  if (spec.shutdown && spec.shutdown->how == shutdown_spec::mode::timeout
      && spec.shutdown->timeout.count() < 0)
    return make_error(errc::bad_child_spec,
                      fmt::format("child {} has a negative shutdown", spec.id));
  return {};
}

// Finds the stopped child `id` for restart_child and delete_child, or says why not (OTP's errors).
caf::expected<child_rec*> stopped_child(sup_ptr self, const std::string& id, const char* op) {
  if (simple(self))
    return make_error(errc::simple_one_for_one, fmt::format("{} is not available", op));
  auto* c = find_id(self, id);
  if (c == nullptr)
    return make_error(errc::not_found, id);
  if (c->hdl)
    return make_error(errc::running, id);
  if (c->st == child_state::restarting)
    return make_error(errc::restarting, id);
  return c;
}

child_rec& add_child(sup_ptr self, child_spec spec, caf::message args) {
  auto& st = self->state;
  child_rec c;
  c.key = ++st.next_key;
  c.spec = std::move(spec);
  c.args = std::move(args);
  st.children.push_back(std::move(c));
  return st.children.back();
}

caf::behavior make_behavior(sup_ptr self) {
  return {
    [self](start_atom) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.started)
        return caf::ok_atom::value;
      if (st.start_error)
        return st.start_error;
      auto rp = self->make_response_promise();
      st.start_waiters.push_back(rp);
      return rp;
    },
    [self](start_child_atom, child_spec& spec) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      if (simple(self))
        return make_error(errc::simple_one_for_one,
                          "this supervisor is simple_one_for_one: start children with arguments");
      if (auto err = check_spec(spec))
        return err;
      if (auto* c = find_id(self, spec.id))
        return c->hdl ? make_error(errc::already_started, spec.id)
                      : make_error(errc::already_present, spec.id);
      if (st.flags.shutdown_mode == auto_shutdown::never && spec.significant)
        return make_error(errc::bad_child_spec,
                          fmt::format("child {} is significant but auto_shutdown is never "
                                      "(bad_combination)",
                                      spec.id));
      auto& c = add_child(self, std::move(spec), caf::message{});
      auto rp = self->make_response_promise();
      enqueue(self, step{step::kind::start, c.key, purpose::api_start, rp});
      run_steps(self);
      return rp;
    },
    [self](start_child_atom, caf::message& args) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      if (!simple(self))
        return make_error(errc::bad_child_spec,
                          "start_child with arguments needs simple_one_for_one");
      auto& c = add_child(self, st.template_spec, std::move(args));
      auto rp = self->make_response_promise();
      enqueue(self, step{step::kind::start, c.key, purpose::api_start, rp});
      run_steps(self);
      return rp;
    },
    [self](terminate_child_atom, const std::string& id) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      if (simple(self))
        return make_error(errc::simple_one_for_one, "terminate_child needs a handle here");
      auto* c = find_id(self, id);
      if (c == nullptr)
        return make_error(errc::not_found, id);
      if (!c->hdl) {
        c->st = child_state::stopped;
        ++c->gen; // cancels a scheduled restart
        if (c->spec.restart == restart_type::temporary)
          erase_key(self, c->key);
        return caf::ok_atom::value;
      }
      auto rp = self->make_response_promise();
      enqueue(self, step{step::kind::terminate, c->key, purpose::api_start, rp});
      run_steps(self);
      return rp;
    },
    [self](terminate_child_atom, const caf::actor& hdl) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      if (!simple(self))
        return make_error(errc::bad_child_spec,
                          "terminate_child by handle needs simple_one_for_one");
      auto* c = hdl ? find_addr(self, hdl.address()) : nullptr;
      if (c == nullptr)
        return make_error(errc::not_found, "no such child");
      auto rp = self->make_response_promise();
      enqueue(self, step{step::kind::terminate, c->key, purpose::api_start, rp});
      run_steps(self);
      return rp;
    },
    [self](restart_child_atom, const std::string& id) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      auto c = stopped_child(self, id, "restart_child");
      if (!c)
        return std::move(c.error());
      auto rp = self->make_response_promise();
      enqueue(self, step{step::kind::start, (*c)->key, purpose::api_restart, rp});
      run_steps(self);
      return rp;
    },
    [self](delete_child_atom, const std::string& id) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.deferring)
        return caf::skip();
      auto c = stopped_child(self, id, "delete_child");
      if (!c)
        return std::move(c.error());
      erase_key(self, (*c)->key);
      return caf::ok_atom::value;
    },
    [self](which_children_atom) {
      std::vector<child_info> result;
      auto& xs = self->state.children;
      for (auto i = xs.rbegin(); i != xs.rend(); ++i) {
        child_info info;
        info.id = i->spec.id;
        info.kind = i->spec.kind;
        if (i->hdl && i->st != child_state::starting) {
          info.handle = i->hdl;
          info.status = child_status::running;
        } else if (i->st == child_state::restarting) {
          info.status = child_status::restarting;
        }
        result.push_back(std::move(info));
      }
      return result;
    },
    [self](count_children_atom) {
      child_counts result;
      for (auto& c : self->state.children) {
        ++result.specs;
        if (c.hdl && c.st != child_state::restarting)
          ++result.active;
        if (c.spec.kind == child_kind::supervisor)
          ++result.supervisors;
        else
          ++result.workers;
      }
      return result;
    },
    [self](restart_tick_atom, std::uint64_t key, std::uint64_t gen) {
      auto& st = self->state;
      if (key == 0) { // the end of a `wait` step
        if (gen == st.wait_token && st.waiting && !st.steps.empty()
            && st.steps.front().what == step::kind::wait)
          step_done(self);
        return;
      }
      auto* c = find_key(self, key);
      if (c == nullptr || c->gen != gen || c->st != child_state::restarting
          || self->state.shutting_down)
        return;
      enqueue(self, step{step::kind::start, key, purpose::restart, {}});
      run_steps(self);
    },
    [self](try_again_atom, std::uint64_t key, std::uint64_t gen) {
      auto& st = self->state;
      auto* c = find_key(self, key);
      if (c == nullptr || c->gen != gen || c->st != child_state::restarting || st.shutting_down)
        return;
      if (!count_restart(self, *c, st.last_start_error))
        return;
      auto& xs = st.children;
      switch (st.flags.how) {
        case strategy::one_for_one:
        case strategy::simple_one_for_one:
          start_after_backoff(self, *c);
          break;
        case strategy::one_for_all:
          // Members started during the failed attempt are stopped again; then everyone starts.
          for (auto i = xs.rbegin(); i != xs.rend(); ++i)
            if (i->hdl)
              enqueue(self, step{step::kind::terminate, i->key, purpose::restart, {}});
          enqueue_group_backoff(self, *c);
          for (auto& x : xs)
            enqueue(self, step{step::kind::start, x.key, purpose::restart, {}});
          break;
        case strategy::rest_for_one: {
          // Resume at the child that failed to start.
          enqueue_group_backoff(self, *c);
          auto pos = std::find_if(xs.begin(), xs.end(), [key](auto& x) { return x.key == key; });
          for (auto i = pos; i != xs.end(); ++i)
            if (!i->hdl)
              enqueue(self, step{step::kind::start, i->key, purpose::restart, {}});
          break;
        }
      }
      run_steps(self);
    },
    [self](shutdown_timeout_atom, std::uint64_t key, std::uint64_t gen) {
      auto& st = self->state;
      if (key == 0) { // the shared timer of a parallel shutdown
        if (gen != st.parallel_epoch)
          return;
        for (auto& c : st.children)
          if (c.hdl && c.st == child_state::terminating)
            self->send_exit(c.hdl, caf::exit_reason::kill);
        return;
      }
      auto* c = find_key(self, key);
      if (c != nullptr && c->gen == gen && c->st == child_state::terminating && c->hdl)
        self->send_exit(c->hdl, caf::exit_reason::kill);
    },
    [self](reset_backoff_atom, std::uint64_t key, std::uint64_t gen, std::uint64_t count) {
      auto* c = find_key(self, key);
      if (c != nullptr && c->gen == gen && c->restarts_in_row == count)
        c->restarts_in_row = 0;
    },
  };
}

void supervisor_impl(sup_ptr self, supervisor_flags flags, std::vector<child_spec> specs,
                     caf::actor parent) {
  auto& st = self->state;
  st.flags = flags;
  st.window = restart_window{flags.intensity, flags.period};
  st.rng.seed(static_cast<std::minstd_rand::result_type>(flags.seed));
  if (parent) {
    st.parent = parent.address();
    self->monitor(parent);
  }
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason)
      begin_shutdown(self, msg.reason);
  });
  if (flags.how == strategy::simple_one_for_one) {
    st.template_spec = std::move(specs.front());
  } else {
    for (auto& spec : specs) {
      auto& c = add_child(self, std::move(spec), caf::message{});
      enqueue(self, step{step::kind::start, c.key, purpose::initial, {}});
    }
  }
  enqueue(self, step{step::kind::started_marker, 0, purpose::initial, {}});
  self->become(make_behavior(self));
  run_steps(self);
}

} // namespace

caf::error validate(const supervisor_flags& flags, const std::vector<child_spec>& specs) {
  if (flags.intensity < 0)
    return make_error(errc::bad_flags, fmt::format("intensity {} is negative", flags.intensity));
  if (flags.period.count() <= 0)
    return make_error(errc::bad_flags,
                      fmt::format("period {} s is not positive", flags.period.count()));
  if (flags.how == strategy::simple_one_for_one) {
    if (specs.size() != 1)
      return make_error(errc::bad_child_spec,
                        fmt::format("simple_one_for_one needs exactly one child spec, got {}",
                                    specs.size()));
    if (flags.shutdown_mode != auto_shutdown::never)
      return make_error(errc::bad_flags, "simple_one_for_one cannot auto shutdown");
  }
  std::unordered_set<std::string_view> ids;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (auto err = check_spec(specs[i]))
      return err;
    if (specs[i].significant && flags.shutdown_mode == auto_shutdown::never)
      return make_error(errc::bad_child_spec,
                        fmt::format("child {} is significant but auto_shutdown is never "
                                    "(bad_combination)",
                                    specs[i].id));
    if (flags.how != strategy::simple_one_for_one && !ids.insert(specs[i].id).second)
      return make_error(errc::duplicate_child,
                        fmt::format("two children have the id {}", specs[i].id));
  }
  return {};
}

caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys, supervisor_flags flags,
                                           std::vector<child_spec> specs) {
  if (auto err = validate(flags, specs))
    return err;
  return sys.spawn(supervisor_impl, std::move(flags), std::move(specs), caf::actor{});
}

child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> specs,
                            restart_type restart, bool significant) {
  child_spec result;
  result.id = std::move(id);
  result.restart = restart;
  result.kind = child_kind::supervisor;
  result.significant = significant;
  result.start = [flags, specs](start_context& ctx) -> caf::expected<caf::actor> {
    if (auto err = validate(flags, specs))
      return err;
    return ctx.self->spawn(supervisor_impl, flags, specs, caf::actor{ctx.self});
  };
  return result;
}

void follow_supervisor(caf::scheduled_actor* self, const caf::actor& sup) {
  if (!sup)
    return;
  self->monitor(sup);
  const auto addr = sup.address();
  self->set_down_handler([self, addr](caf::down_msg& msg) {
    if (msg.source == addr)
      self->quit(msg.reason);
  });
}

} // namespace shardflow
