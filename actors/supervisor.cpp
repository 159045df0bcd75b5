// The supervisor actor: a thin layer over core/supervisor_plan. It turns CAF messages (requests,
// handshake answers, down and exit messages, its own timers) into plan events and carries out the
// plan's actions (spawn, monitor, exit, delayed send, reply, quit). While the plan is not idle the
// actor runs a busy behavior on top of the idle one (become(keep_behavior, ...) / unbecome()) with a
// skipping default handler, so management requests wait in the mailbox.
//
// Memory and start-up of many small supervisors (10,000 shard groups under a root): a nested
// supervisor's flags and specs are made once (supervisor_def) and shared by its parent's child spec
// and each of its incarnations; the start handshakes are requests without a CAF timeout, under one
// start timer per supervisor for the oldest outstanding handshake (re-armed for the next one when
// it fires): CAF 0.17 never cancels a request timeout, so each handshake kept a clock entry for the
// whole start_timeout after its answer and woke the clock thread once more per child.
#include <shardflow/actors/supervisor.hpp>

#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <caf/all.hpp>
#include <fmt/format.h>

namespace shardflow {

namespace {

// -- state -----------------------------------------------------------------------------------------

// A supervisor's flags and static child specs (the template under simple_one_for_one), made once
// and shared by every incarnation and by the parent's child spec that starts it: a nested
// supervisor (a shard group) held its specs twice before, in its parent's start function and in
// its own state, start functions and all.
struct supervisor_def {
  supervisor_flags flags;
  std::vector<child_spec> specs;
  caf::error invalid; // validate()'s verdict
};

using def_ptr = std::shared_ptr<const supervisor_def>;

def_ptr make_def(supervisor_flags flags, std::vector<child_spec> specs) {
  auto def = std::make_shared<supervisor_def>();
  def->invalid = validate(flags, specs);
  def->flags = std::move(flags);
  def->specs = std::move(specs);
  return def;
}

// What the plan does not hold about a child: its spec (a static one points into the
// supervisor_def), arguments and current actor.
struct child_side {
  std::shared_ptr<const child_spec> spec;
  caf::message args;
  caf::actor hdl;
};

struct pending_reply {
  caf::response_promise rp;
  bool wants_actor = false; // start / restart answer with the child's handle, the others with ok
};

// A start handshake not answered yet, and when it times out. Every handshake of a supervisor has
// the same timeout, so the deadlines come in the order the handshakes were sent.
struct handshake_deadline {
  caf::actor_clock::time_point at;
  std::uint64_t key;
  std::uint64_t gen;
};

struct supervisor_state {
  static inline const char* name = "shardflow.supervisor";

  def_ptr def;
  supervisor_plan plan;
  std::unordered_map<std::uint64_t, child_side> side;
  // The child key and generation each monitored actor was started as (gone when its down arrives).
  std::unordered_map<caf::actor_id, std::pair<std::uint64_t, std::uint64_t>> by_actor;
  std::shared_ptr<const child_spec> template_spec; // simple_one_for_one
  std::unordered_map<std::uint64_t, pending_reply> replies;
  std::uint64_t next_token = 0;
  std::vector<caf::response_promise> start_waiters;
  caf::error requested; // the exit reason given by the parent or host
  caf::actor_addr parent;
  bool busy = false; // the busy behavior is on top
  // The handshakes outstanding, oldest first, under ONE timer for the oldest (armed): a request
  // timeout each was a clock entry per child (CAF 0.17 never cancels them), kept for the whole
  // start_timeout after the answer, and a wake-up of the clock thread per start.
  fifo<handshake_deadline> deadlines;
  bool deadline_armed = false;
};

using sup_ptr = caf::stateful_actor<supervisor_state>*;

shutdown_spec shutdown_of(const child_spec& spec) {
  if (spec.shutdown)
    return *spec.shutdown;
  return spec.kind == child_kind::supervisor ? shutdown_spec::infinity()
                                             : shutdown_spec::after(std::chrono::seconds(5));
}

plan_child to_plan(const child_spec& spec) {
  return plan_child{spec.id, spec.restart, shutdown_of(spec), spec.significant, spec.backoff};
}

exit_kind classify(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal)
    return exit_kind::normal;
  if (reason == caf::exit_reason::user_shutdown)
    return exit_kind::shutdown;
  return exit_kind::abnormal;
}

// A shardflow error reads "code: text" (the log line has the one "shardflow" prefix); others as CAF
// renders them.
std::string describe(sup_ptr self, const caf::error& reason) {
  if (!reason)
    return "normal";
  if (auto code = code_of(reason); code != errc::none) {
    auto text = text_of(reason);
    return text.empty() ? std::string{to_string(code)}
                        : fmt::format("{}: {}", to_string(code), text);
  }
  auto text = self->system().render(reason);
  return text.empty() ? caf::to_string(reason) : text;
}

child_exit exit_of(sup_ptr self, const caf::error& reason) {
  // code_of needs a non-empty error
  const bool gave_up = reason && code_of(reason) == errc::restart_limit_reached;
  return child_exit{classify(reason), gave_up, describe(self, reason)};
}

std::string name_of(sup_ptr self, std::uint64_t key) {
  auto* c = self->state.plan.find_key(key);
  return c != nullptr && !c->spec.id.empty() ? c->spec.id : fmt::format("#{}", key);
}

// -- carrying out the plan's actions --------------------------------------------------------------

void drive(sup_ptr self);

// Runs one plan event at the actor clock's time, then carries out what it decided.
template <class F>
void event(sup_ptr self, F f) {
  self->state.plan.at(self->clock().now());
  f(self->state.plan);
  drive(self);
}

void do_spawn(sup_ptr self, const plan_action& a) {
  auto& st = self->state;
  auto& c = st.side[a.key];
  start_context ctx{self, c.args, [self](const std::string& id) {
                      auto* sib = self->state.plan.find_id(id);
                      if (sib == nullptr || sib->phase != child_phase::running)
                        return caf::actor{};
                      return self->state.side[sib->key].hdl;
                    }};
  caf::expected<caf::actor> res{caf::actor{}};
  try {
    res = c.spec->start(ctx);
  } catch (const std::exception& e) {
    res = make_error(errc::start_failed, e.what());
  }
  if (!res)
    return st.plan.spawn_failed(a.key, describe(self, res.error()));
  if (!*res) // OTP's ignore
    return st.plan.spawn_ignored(a.key);
  if (auto i = st.by_actor.find(res->id()); i != st.by_actor.end()) {
    // One actor, one child: a start function starts an actor, it does not hand over a running one.
    return st.plan.spawn_failed(a.key, fmt::format("its start function returned the actor of "
                                                   "child {}",
                                                   name_of(self, i->second.first)));
  }
  c.hdl = *res;
  self->monitor(c.hdl);
  st.by_actor[c.hdl.id()] = {a.key, a.gen};
  st.plan.spawned(a.key, c.spec->handshake);
}

// Whether handshake `d` still waits for its answer.
bool outstanding(sup_ptr self, const handshake_deadline& d) {
  auto* c = self->state.plan.find_key(d.key);
  return c != nullptr && c->gen == d.gen && c->phase == child_phase::starting;
}

void arm_deadline(sup_ptr self) {
  auto& st = self->state;
  while (!st.deadlines.empty() && !outstanding(self, st.deadlines.front()))
    st.deadlines.pop_front();
  if (st.deadlines.empty()) {
    st.deadlines.release();
    return;
  }
  if (st.deadline_armed)
    return;
  st.deadline_armed = true;
  const auto now = self->clock().now();
  const auto at = st.deadlines.front().at;
  self->delayed_send(self, at > now ? at - now : caf::actor_clock::duration_type{0},
                     start_deadline_atom::value);
}

// The oldest handshake's deadline came: every handshake past its deadline fails, as a request
// timeout did (the child is stopped by the plan; a late answer finds it no longer starting).
void on_deadline(sup_ptr self) {
  auto& st = self->state;
  st.deadline_armed = false;
  const auto now = self->clock().now();
  while (!st.deadlines.empty() && st.deadlines.front().at <= now) {
    const auto d = st.deadlines.front();
    st.deadlines.pop_front();
    if (!outstanding(self, d))
      continue;
    auto why = describe(self, caf::make_error(caf::sec::request_timeout));
    event(self, [&](supervisor_plan& p) { p.handshake_failed(d.key, d.gen, why); });
  }
  arm_deadline(self);
}

void do_handshake(sup_ptr self, const plan_action& a) {
  const auto key = a.key;
  const auto gen = a.gen;
  auto& st = self->state;
  st.deadlines.push_back({self->clock().now() + st.def->flags.start_timeout, key, gen});
  arm_deadline(self);
  self->request(st.side[key].hdl, caf::infinite, start_atom::value)
    .then([self, key, gen](caf::ok_atom) {
            event(self, [&](supervisor_plan& p) { p.handshake_ok(key, gen); });
            arm_deadline(self); // drops the answered ones at the front
          },
          [self, key, gen](caf::error& err) {
            if (err == caf::sec::request_receiver_down)
              return; // it is gone: its down message says whether it failed or ended
            auto why = describe(self, err);
            event(self, [&](supervisor_plan& p) { p.handshake_failed(key, gen, why); });
          });
}

void do_stop(sup_ptr self, const plan_action& a) {
  auto i = self->state.side.find(a.key);
  if (i == self->state.side.end() || !i->second.hdl)
    return;
  self->send_exit(i->second.hdl, a.kill ? caf::error{caf::exit_reason::kill}
                                        : caf::error{caf::exit_reason::user_shutdown});
}

void do_timer(sup_ptr self, const plan_action& a) {
  // A backoff reset of a child that has not been restarted resets a count of 0 (the plan asks for
  // one at every start): every shard group's first start left a delayed message for 10 s.
  if (a.timer.kind == timer_kind::backoff_reset && a.timer.count == 0)
    return;
  const auto kind = static_cast<std::uint64_t>(a.timer.kind);
  if (a.delay.count() <= 0)
    self->send(self, restart_tick_atom::value, kind, a.timer.key, a.timer.gen, a.timer.count);
  else
    self->delayed_send(self, a.delay, restart_tick_atom::value, kind, a.timer.key, a.timer.gen,
                       a.timer.count);
}

void do_reply(sup_ptr self, const plan_action& a) {
  auto& st = self->state;
  auto i = st.replies.find(a.token);
  if (i == st.replies.end())
    return;
  auto r = std::move(i->second);
  st.replies.erase(i);
  if (a.code != errc::none)
    r.rp.deliver(make_error(a.code, a.text));
  else if (!r.wants_actor)
    r.rp.deliver(caf::ok_atom::value);
  else if (auto c = st.side.find(a.key); a.key != 0 && c != st.side.end())
    r.rp.deliver(c->second.hdl);
  else
    r.rp.deliver(caf::actor{});
}

caf::error quit_reason_of(sup_ptr self, const plan_action& a) {
  switch (a.why) {
    case quit_reason::requested:
      return self->state.requested;
    case quit_reason::start_failed:
      return make_error(errc::start_failed, a.text);
    case quit_reason::gave_up:
      // Abnormal, so that the parent restarts this supervisor or gives up in turn (escalation).
      return make_error(errc::restart_limit_reached, a.text);
    case quit_reason::auto_shutdown:
      break;
  }
  return caf::exit_reason::user_shutdown;
}

void do_quit(sup_ptr self, const plan_action& a) {
  auto& st = self->state;
  auto reason = quit_reason_of(self, a);
  auto told = reason ? reason
                     : make_error(errc::shutting_down,
                                  "the supervisor stopped before its children were up");
  for (auto& rp : st.start_waiters)
    rp.deliver(told);
  st.start_waiters = {}; // frees it: a start is answered once per incarnation
  for (auto& r : st.replies)
    r.second.rp.deliver(make_error(errc::shutting_down, "the supervisor is shutting down"));
  st.replies.clear();
  self->quit(std::move(reason));
}

void execute(sup_ptr self, const plan_action& a) {
  auto& st = self->state;
  switch (a.what) {
    case plan_action::kind::spawn:
      return do_spawn(self, a);
    case plan_action::kind::handshake:
      return do_handshake(self, a);
    case plan_action::kind::stop:
      return do_stop(self, a);
    case plan_action::kind::timer:
      return do_timer(self, a);
    case plan_action::kind::reply:
      return do_reply(self, a);
    case plan_action::kind::forget:
      st.side.erase(a.key);
      return;
    case plan_action::kind::started:
      for (auto& rp : st.start_waiters)
        rp.deliver(caf::ok_atom::value);
      st.start_waiters = {}; // frees it: a start is answered once per incarnation
      return;
    case plan_action::kind::report:
      if (st.def->flags.report)
        st.def->flags.report(a.text);
      return;
    case plan_action::kind::quit:
      return do_quit(self, a);
  }
}

caf::behavior busy_behavior(sup_ptr self);

// Management requests wait while the plan is not idle: a busy behavior on top of the idle one.
void sync_phase(sup_ptr self) {
  auto& st = self->state;
  const auto phase = st.plan.phase();
  if (phase == supervisor_phase::ended)
    return;
  const bool busy = phase != supervisor_phase::idle;
  if (busy == st.busy)
    return;
  st.busy = busy;
  if (busy) {
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, busy_behavior(self));
  } else {
    self->unbecome(); // CAF looks at the requests skipped meanwhile
    self->set_default_handler(caf::print_and_drop);
  }
}

void drive(sup_ptr self) {
  auto& st = self->state;
  for (auto actions = st.plan.take_actions(); !actions.empty(); actions = st.plan.take_actions())
    for (auto& a : actions)
      execute(self, a);
  sync_phase(self);
}

// -- handlers ------------------------------------------------------------------------------------

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

// Returns a token for a request answered by a later `reply` action.
std::uint64_t expect_reply(sup_ptr self, caf::response_promise rp, bool wants_actor) {
  auto& st = self->state;
  const auto token = ++st.next_token;
  st.replies.emplace(token, pending_reply{std::move(rp), wants_actor});
  return token;
}

bool simple(sup_ptr self) {
  return self->state.def->flags.how == strategy::simple_one_for_one;
}

auto on_start(sup_ptr self) {
  return [self](start_atom) -> caf::result<caf::ok_atom> {
    auto& st = self->state;
    if (st.plan.started())
      return caf::ok_atom::value;
    auto rp = self->make_response_promise();
    st.start_waiters.push_back(rp);
    return rp;
  };
}

auto on_which_children(sup_ptr self) {
  return [self](which_children_atom) {
    auto& st = self->state;
    std::vector<child_info> result;
    const auto& xs = st.plan.children();
    for (auto i = xs.rbegin(); i != xs.rend(); ++i) {
      child_info info;
      info.id = i->spec.id;
      info.kind = st.side[i->key].spec->kind;
      if (i->alive && i->phase != child_phase::starting) {
        info.handle = st.side[i->key].hdl;
        info.status = child_status::running;
      } else if (i->phase == child_phase::restarting) {
        info.status = child_status::restarting;
      }
      result.push_back(std::move(info));
    }
    return result;
  };
}

auto on_count_children(sup_ptr self) {
  return [self](count_children_atom) {
    auto& st = self->state;
    child_counts result;
    for (auto& c : st.plan.children()) {
      ++result.specs;
      if (c.alive && c.phase != child_phase::restarting)
        ++result.active;
      if (st.side[c.key].spec->kind == child_kind::supervisor)
        ++result.supervisors;
      else
        ++result.workers;
    }
    return result;
  };
}

auto on_timer(sup_ptr self) {
  return [self](restart_tick_atom, std::uint64_t kind, std::uint64_t key, std::uint64_t gen,
                std::uint64_t count) {
    const plan_timer t{static_cast<timer_kind>(kind), key, gen, count};
    event(self, [&](supervisor_plan& p) { p.timer_fired(t); });
  };
}

caf::behavior busy_behavior(sup_ptr self) {
  return {on_start(self), on_which_children(self), on_count_children(self), on_timer(self),
          [self](start_deadline_atom) { on_deadline(self); }};
}

auto on_start_child(sup_ptr self) {
  return [self](start_child_atom, child_spec& spec) -> caf::result<caf::actor> {
    auto& st = self->state;
    if (simple(self))
      return make_error(errc::simple_one_for_one,
                        "this supervisor is simple_one_for_one: start children with arguments");
    if (auto err = check_spec(spec))
      return err;
    if (auto* c = st.plan.find_id(spec.id))
      return c->alive ? make_error(errc::already_started, spec.id)
                      : make_error(errc::already_present, spec.id);
    if (st.def->flags.shutdown_mode == auto_shutdown::never && spec.significant)
      return make_error(errc::bad_child_spec,
                        fmt::format("child {} is significant but auto_shutdown is never "
                                    "(bad_combination)",
                                    spec.id));
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, true);
    event(self, [&](supervisor_plan& p) {
      auto key = p.start_child(to_plan(spec), token);
      st.side[key] = child_side{std::make_shared<const child_spec>(std::move(spec)),
                                caf::message{}, caf::actor{}};
    });
    return rp;
  };
}

auto on_start_simple_child(sup_ptr self) {
  return [self](start_child_atom, caf::message& args) -> caf::result<caf::actor> {
    auto& st = self->state;
    if (!simple(self))
      return make_error(errc::bad_child_spec,
                        "start_child with arguments needs simple_one_for_one");
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, true);
    event(self, [&](supervisor_plan& p) {
      auto key = p.start_child(std::nullopt, token);
      st.side[key] = child_side{st.template_spec, std::move(args), caf::actor{}};
    });
    return rp;
  };
}

auto on_terminate_child(sup_ptr self) {
  return [self](terminate_child_atom, const std::string& id) -> caf::result<caf::ok_atom> {
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, false);
    event(self, [&](supervisor_plan& p) { p.terminate_child(id, token); });
    return rp;
  };
}

auto on_terminate_simple_child(sup_ptr self) {
  return [self](terminate_child_atom, const caf::actor& hdl) -> caf::result<caf::ok_atom> {
    auto& st = self->state;
    if (!simple(self))
      return make_error(errc::bad_child_spec, "terminate_child by handle needs simple_one_for_one");
    auto i = hdl ? st.by_actor.find(hdl.id()) : st.by_actor.end();
    if (i == st.by_actor.end())
      return make_error(errc::not_found, "no such child");
    const auto key = i->second.first;
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, false);
    event(self, [&](supervisor_plan& p) { p.terminate_key(key, token); });
    return rp;
  };
}

auto on_restart_child(sup_ptr self) {
  return [self](restart_child_atom, const std::string& id) -> caf::result<caf::actor> {
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, true);
    event(self, [&](supervisor_plan& p) { p.restart_child(id, token); });
    return rp;
  };
}

auto on_delete_child(sup_ptr self) {
  return [self](delete_child_atom, const std::string& id) -> caf::result<caf::ok_atom> {
    auto rp = self->make_response_promise();
    const auto token = expect_reply(self, rp, false);
    event(self, [&](supervisor_plan& p) { p.delete_child(id, token); });
    return rp;
  };
}

caf::behavior idle_behavior(sup_ptr self) {
  return {on_start(self),           on_which_children(self),
          on_count_children(self),  on_timer(self),
          [self](start_deadline_atom) { on_deadline(self); },
          on_start_child(self),     on_start_simple_child(self),
          on_terminate_child(self), on_terminate_simple_child(self),
          on_restart_child(self),   on_delete_child(self)};
}

void on_down(sup_ptr self, caf::down_msg& msg) {
  auto& st = self->state;
  if (st.parent && msg.source == st.parent) {
    if (st.plan.phase() != supervisor_phase::shutting_down)
      st.requested = msg.reason;
    event(self, [](supervisor_plan& p) { p.shutdown(); });
    return;
  }
  auto i = st.by_actor.find(msg.source.id());
  if (i == st.by_actor.end())
    return;
  const auto [key, gen] = i->second;
  st.by_actor.erase(i);
  auto how = exit_of(self, msg.reason);
  event(self, [&](supervisor_plan& p) { p.down(key, gen, std::move(how)); });
}

void supervisor_impl(sup_ptr self, def_ptr def, caf::actor parent) {
  auto& st = self->state;
  st.def = std::move(def);
  const auto& flags = st.def->flags;
  st.plan = supervisor_plan{supervisor_plan_config{flags.how, flags.intensity, flags.period,
                                                   flags.shutdown_mode, flags.seed,
                                                   flags.parallel_start, flags.start_window}};
  if (parent) {
    st.parent = parent.address();
    self->monitor(parent);
  }
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!msg.reason)
      return;
    if (self->state.plan.phase() != supervisor_phase::shutting_down)
      self->state.requested = msg.reason;
    event(self, [](supervisor_plan& p) { p.shutdown(); });
  });
  if (flags.how == strategy::simple_one_for_one) {
    st.template_spec = std::shared_ptr<const child_spec>(st.def, &st.def->specs.front());
    st.plan.set_template(to_plan(*st.template_spec));
  } else {
    for (const auto& spec : st.def->specs) {
      auto key = st.plan.add_static(to_plan(spec));
      st.side[key] = child_side{std::shared_ptr<const child_spec>(st.def, &spec), caf::message{},
                                caf::actor{}};
    }
  }
  self->become(idle_behavior(self));
  event(self, [](supervisor_plan& p) { p.begin(); });
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
  auto def = make_def(std::move(flags), std::move(specs));
  if (def->invalid)
    return def->invalid;
  return sys.spawn(supervisor_impl, std::move(def), caf::actor{});
}

child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> specs,
                            restart_type restart, bool significant) {
  child_spec result;
  result.id = std::move(id);
  result.restart = restart;
  result.kind = child_kind::supervisor;
  result.significant = significant;
  result.start = [def = make_def(std::move(flags), std::move(specs))](
                   start_context& ctx) -> caf::expected<caf::actor> {
    if (def->invalid)
      return def->invalid;
    return ctx.self->spawn(supervisor_impl, def, caf::actor{ctx.self});
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
