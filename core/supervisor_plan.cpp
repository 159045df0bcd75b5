#include <shardflow/core/supervisor_plan.hpp>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace shardflow {

namespace {

plan_action action(plan_action::kind what) {
  plan_action result;
  result.what = what;
  return result;
}

} // namespace

supervisor_plan::supervisor_plan(supervisor_plan_config cfg)
  : cfg_(cfg), window_(cfg.intensity, cfg.period) {
  rng_.seed(static_cast<std::minstd_rand::result_type>(cfg.seed));
}

// -- setup ---------------------------------------------------------------------------------------

std::uint64_t supervisor_plan::add_static(plan_child spec) {
  return add(std::move(spec)).key;
}

void supervisor_plan::set_template(plan_child spec) {
  template_ = std::move(spec);
}

void supervisor_plan::begin() {
  for (auto& c : children_)
    enqueue(step{step::kind::start, c.key, purpose::initial, {}, {}});
  enqueue(step{step::kind::started_marker, 0, purpose::initial, {}, {}});
  run_steps();
}

// -- table ---------------------------------------------------------------------------------------

// Lookups by key are O(log n): a root supervisor may have 10,000 children.
plan_entry* supervisor_plan::entry(std::uint64_t key) {
  auto i = std::lower_bound(children_.begin(), children_.end(), key,
                            [](const plan_entry& c, std::uint64_t k) { return c.key < k; });
  return i != children_.end() && i->key == key ? &*i : nullptr;
}

plan_entry* supervisor_plan::entry_id(const std::string& id) {
  for (auto& c : children_)
    if (c.spec.id == id)
      return &c;
  return nullptr;
}

const plan_entry* supervisor_plan::find_key(std::uint64_t key) const {
  return const_cast<supervisor_plan*>(this)->entry(key);
}

const plan_entry* supervisor_plan::find_id(const std::string& id) const {
  return const_cast<supervisor_plan*>(this)->entry_id(id);
}

plan_entry& supervisor_plan::add(plan_child spec) {
  plan_entry c;
  c.key = ++next_key_;
  c.spec = std::move(spec);
  children_.push_back(std::move(c));
  return children_.back();
}

void supervisor_plan::erase(std::uint64_t key) {
  auto i = std::lower_bound(children_.begin(), children_.end(), key,
                            [](const plan_entry& c, std::uint64_t k) { return c.key < k; });
  if (i == children_.end() || i->key != key)
    return;
  children_.erase(i);
  auto a = action(plan_action::kind::forget);
  a.key = key;
  emit(std::move(a));
}

std::string supervisor_plan::name_of(const plan_entry& c) const {
  return c.spec.id.empty() ? fmt::format("#{}", c.key) : c.spec.id;
}

// -- actions -------------------------------------------------------------------------------------

void supervisor_plan::emit(plan_action a) {
  actions_.push_back(std::move(a));
}

std::vector<plan_action> supervisor_plan::take_actions() {
  std::vector<plan_action> result;
  result.swap(actions_);
  return result;
}

void supervisor_plan::reply_ok(const std::optional<std::uint64_t>& token, std::uint64_t key) {
  if (!token)
    return;
  auto a = action(plan_action::kind::reply);
  a.token = *token;
  a.key = key;
  emit(std::move(a));
}

void supervisor_plan::reply_error(const std::optional<std::uint64_t>& token, errc code,
                                  std::string text) {
  if (!token)
    return;
  auto a = action(plan_action::kind::reply);
  a.token = *token;
  a.code = code;
  a.text = std::move(text);
  emit(std::move(a));
}

void supervisor_plan::kill(const plan_entry& c) {
  auto a = action(plan_action::kind::stop);
  a.key = c.key;
  a.gen = c.gen;
  a.kill = true;
  emit(std::move(a));
}

void supervisor_plan::timer(timer_kind kind, std::uint64_t key, std::uint64_t gen,
                            std::chrono::nanoseconds delay, std::uint64_t count) {
  auto a = action(plan_action::kind::timer);
  a.timer = plan_timer{kind, key, gen, count};
  a.delay = delay;
  emit(std::move(a));
}

// -- queries -------------------------------------------------------------------------------------

supervisor_phase supervisor_plan::phase() const noexcept {
  if (ended_)
    return supervisor_phase::ended;
  if (shutting_down_)
    return supervisor_phase::shutting_down;
  if (!started_)
    return supervisor_phase::starting;
  return steps_.empty() ? supervisor_phase::idle : supervisor_phase::busy;
}

// -- the step machine ----------------------------------------------------------------------------

void supervisor_plan::enqueue(step s) {
  steps_.push_back(std::move(s));
}

void supervisor_plan::run_steps() {
  while (!waiting_ && !steps_.empty() && !ended_) {
    if (!exec(steps_.front())) {
      waiting_ = true;
      return;
    }
    if (!ended_)
      steps_.pop_front();
  }
  if (!waiting_ && steps_.empty() && !ended_) {
    leave_busy();
    if (steps_.empty())
      steps_.release(); // steps come in bursts (start, restart, stop): an idle group keeps none
  }
}

bool supervisor_plan::exec(step& s) {
  switch (s.what) {
    case step::kind::start:
      return exec_start(s);
    case step::kind::terminate:
      return exec_terminate(s);
    case step::kind::terminate_all:
      return exec_terminate_all();
    case step::kind::wait:
      timer(timer_kind::group_backoff, s.key, ++wait_token_, s.delay);
      return false;
    case step::kind::started_marker:
      if (awaiting_ > 0)
        return false; // a parallel start: answered in awaited_answered
      started_ = true;
      emit(action(plan_action::kind::started));
      return true;
    case step::kind::quit:
      break;
  }
  auto a = action(plan_action::kind::quit);
  a.why = shutdown_why_;
  a.text = shutdown_text_;
  emit(std::move(a));
  steps_.clear();
  ended_ = true;
  return true;
}

void supervisor_plan::step_done() {
  if (!steps_.empty())
    steps_.pop_front();
  waiting_ = false;
  run_steps();
}

// Exits that came in while steps ran are handled now, in order; one that starts a new sequence
// (a group restart may take care of the others) leaves the rest for after it, when their
// generations tell whether they still matter.
void supervisor_plan::leave_busy() {
  while (!pending_.empty() && steps_.empty() && !shutting_down_) {
    auto p = std::move(pending_.front());
    pending_.pop_front();
    auto* c = entry(p.key);
    if (c != nullptr && c->gen == p.gen && !c->alive && c->phase == child_phase::stopped)
      handle_exit(*c, p.how);
  }
}

bool supervisor_plan::exec_start(step& s) {
  auto* c = entry(s.key);
  if (c == nullptr || c->alive)
    return true; // gone, or already running again
  if (s.why == purpose::restart && c->spec.restart == restart_type::temporary) {
    erase(c->key); // a temporary bystander of a group restart is dropped, not restarted
    return true;
  }
  c->gen = ++next_gen_;
  c->phase = child_phase::spawning;
  auto a = action(plan_action::kind::spawn);
  a.key = c->key;
  a.gen = c->gen;
  emit(std::move(a));
  return false;
}

void supervisor_plan::spawned(std::uint64_t key, bool handshake) {
  auto* c = entry(key);
  if (c == nullptr || c->phase != child_phase::spawning)
    return;
  c->alive = true;
  if (handshake) {
    c->phase = child_phase::starting;
    auto a = action(plan_action::kind::handshake);
    a.key = key;
    a.gen = c->gen;
    emit(std::move(a));
    if (cfg_.parallel_start && steps_.front().why == purpose::initial) {
      c->awaited = true; // the next child starts now; the answer comes to awaited_answered
      ++awaiting_;
      if (cfg_.start_window == 0 || awaiting_ < cfg_.start_window)
        step_done();
      else
        held_ = true; // the next child waits for an answer
    }
    return;
  }
  on_started(*c);
}

void supervisor_plan::spawn_ignored(std::uint64_t key) {
  auto* c = entry(key);
  if (c == nullptr || c->phase != child_phase::spawning)
    return;
  c->phase = child_phase::stopped;
  reply_ok(steps_.front().token, 0);
  if (c->spec.restart == restart_type::temporary)
    erase(key);
  step_done();
}

void supervisor_plan::spawn_failed(std::uint64_t key, std::string why) {
  auto* c = entry(key);
  if (c != nullptr && c->phase == child_phase::spawning)
    fail_start(*c, why);
}

void supervisor_plan::handshake_ok(std::uint64_t key, std::uint64_t gen) {
  auto* c = entry(key);
  if (c != nullptr && c->gen == gen && c->phase == child_phase::starting) {
    if (c->awaited)
      return awaited_answered(*c, true);
    on_started(*c);
  }
}

// The handshake of a child of a parallel start was answered (`up`), or the child ended cleanly
// before its answer came; the start is over with the last one.
void supervisor_plan::awaited_answered(plan_entry& c, bool up) {
  c.awaited = false;
  --awaiting_;
  if (up) {
    c.phase = child_phase::running;
    schedule_backoff_reset(c);
  }
  if (held_ && waiting_) { // a place in the window: the next child
    held_ = false;
    step_done();
    return;
  }
  if (awaiting_ == 0 && waiting_ && !steps_.empty()
      && steps_.front().what == step::kind::started_marker) {
    waiting_ = false;
    run_steps();
  }
}

void supervisor_plan::handshake_failed(std::uint64_t key, std::uint64_t gen, std::string why) {
  auto* c = entry(key);
  if (c != nullptr && c->gen == gen && c->phase == child_phase::starting)
    fail_start(*c, why);
}

void supervisor_plan::on_started(plan_entry& c) {
  c.phase = child_phase::running;
  reply_ok(steps_.front().token, c.key);
  schedule_backoff_reset(c);
  step_done();
}

void supervisor_plan::schedule_backoff_reset(const plan_entry& c) {
  const auto& b = c.spec.backoff;
  if (b.min.count() <= 0)
    return;
  auto after = b.reset_after.count() > 0 ? b.reset_after : (b.min + std::max(b.max, b.min)) / 2;
  timer(timer_kind::backoff_reset, c.key, c.gen, after, c.restarts_in_row);
}

void supervisor_plan::fail_start(plan_entry& c, const std::string& reason) {
  if (c.alive) {
    kill(c);
    c.alive = false; // its down event is stale now
  }
  c.phase = child_phase::stopped;
  if (c.awaited) { // a parallel start: the failure of one is the failure of the start
    auto why = fmt::format("child {} failed to start: {}", name_of(c), reason);
    start_error_ = why;
    begin_shutdown(quit_reason::start_failed, why);
    return;
  }
  auto front = std::move(steps_.front());
  steps_.pop_front();
  waiting_ = false;
  auto why = fmt::format("child {} failed to start: {}", name_of(c), reason);
  switch (front.why) {
    case purpose::initial:
      // OTP: stop the children started so far in reverse order, then fail.
      start_error_ = why;
      begin_shutdown(quit_reason::start_failed, why);
      return;
    case purpose::api_start:
      reply_error(front.token, errc::start_failed, why);
      erase(c.key); // no spec is saved
      break;
    case purpose::api_restart:
      reply_error(front.token, errc::start_failed, why);
      break;
    case purpose::restart: {
      // Said, as a failed child is (a restart that keeps failing to start was silent until the
      // give-up); retried asynchronously (counted by the intensity); the other children this
      // restart would have started stay stopped (OTP: undefined) until the retry starts them.
      auto said = action(plan_action::kind::report);
      said.text = why;
      emit(std::move(said));
      c.phase = child_phase::restarting;
      fifo<step> kept;
      for (auto& s : steps_)
        if (!(s.what == step::kind::start && s.why == purpose::restart)
            && s.what != step::kind::wait)
          kept.push_back(std::move(s));
      steps_.swap(kept);
      last_start_error_ = why;
      timer(timer_kind::try_again, c.key, c.gen, std::chrono::nanoseconds{0});
      break;
    }
  }
  run_steps();
}

void supervisor_plan::send_stop(plan_entry& c, bool own_timer) {
  c.phase = child_phase::terminating;
  auto a = action(plan_action::kind::stop);
  a.key = c.key;
  a.gen = c.gen;
  a.kill = c.spec.shutdown.how == shutdown_spec::mode::brutal_kill;
  emit(std::move(a));
  if (own_timer && c.spec.shutdown.how == shutdown_spec::mode::timeout)
    timer(timer_kind::shutdown_deadline, c.key, c.gen, c.spec.shutdown.timeout);
}

// Called when the child of a terminate step is down (or was not running).
void supervisor_plan::terminated(const step& s, plan_entry* c) {
  if (c != nullptr && s.why != purpose::restart) {
    // terminate_child: a temporary child's spec goes; under simple_one_for_one every child's does.
    if (c->spec.restart == restart_type::temporary || simple())
      erase(c->key);
  }
  reply_ok(s.token, 0);
}

bool supervisor_plan::exec_terminate(step& s) {
  auto* c = entry(s.key);
  if (c == nullptr || !c->alive) {
    if (c != nullptr && c->phase != child_phase::restarting)
      c->phase = child_phase::stopped;
    terminated(s, c);
    return true;
  }
  send_stop(*c, true);
  return false;
}

bool supervisor_plan::exec_terminate_all() {
  parallel_outstanding_ = 0;
  ++parallel_epoch_;
  for (auto& c : children_) {
    if (!c.alive)
      continue;
    send_stop(c, false);
    ++parallel_outstanding_;
  }
  if (parallel_outstanding_ == 0)
    return true;
  if (template_.shutdown.how == shutdown_spec::mode::timeout)
    timer(timer_kind::shutdown_all_deadline, 0, parallel_epoch_, template_.shutdown.timeout);
  return false;
}

void supervisor_plan::begin_shutdown(quit_reason why, std::string text) {
  if (shutting_down_)
    return;
  shutting_down_ = true;
  shutdown_why_ = why;
  shutdown_text_ = std::move(text);
  // Keep a terminate step that is waiting for its child; drop everything else.
  fifo<step> kept;
  if (waiting_ && !steps_.empty()) {
    auto& front = steps_.front();
    if (front.what == step::kind::terminate || front.what == step::kind::terminate_all) {
      kept.push_back(std::move(front));
      steps_.pop_front();
    } else {
      // An unanswered start: its late answer must not complete anything; the child is stopped
      // below like the others.
      waiting_ = false;
      if (auto* c = entry(front.key); c && c->phase == child_phase::starting)
        c->phase = child_phase::running;
    }
  }
  // The answers a parallel start still awaits complete nothing now: those children are stopped
  // below like the others.
  if (awaiting_ > 0) {
    for (auto& c : children_) {
      if (!c.awaited)
        continue;
      c.awaited = false;
      if (c.phase == child_phase::starting)
        c.phase = child_phase::running;
    }
    awaiting_ = 0;
    held_ = false;
  }
  for (auto& s : steps_)
    reply_error(s.token, errc::shutting_down, "the supervisor is shutting down");
  steps_.swap(kept);
  if (simple()) {
    enqueue(step{step::kind::terminate_all, 0, purpose::restart, {}, {}});
  } else {
    for (auto i = children_.rbegin(); i != children_.rend(); ++i)
      if (i->alive)
        enqueue(step{step::kind::terminate, i->key, purpose::restart, {}, {}});
  }
  enqueue(step{step::kind::quit, 0, purpose::restart, {}, {}});
  run_steps();
}

void supervisor_plan::shutdown() {
  begin_shutdown(quit_reason::requested, {});
}

// -- events from children and timers -------------------------------------------------------------

void supervisor_plan::down(std::uint64_t key, std::uint64_t gen, child_exit how) {
  auto* c = entry(key);
  if (c == nullptr || c->gen != gen || !c->alive)
    return; // a stale incarnation
  c->alive = false;
  switch (c->phase) {
    case child_phase::starting:
      if (how.how == exit_kind::abnormal)
        return fail_start(*c, how.text);
      // It started and ended before its answer came (a finite child with little to do): not a
      // start failure. Its exit is handled once the sequence is over, like any other.
      c->phase = child_phase::stopped;
      pending_.push_back({c->key, c->gen, std::move(how)});
      if (c->awaited)
        return awaited_answered(*c, false);
      reply_ok(steps_.front().token, key);
      step_done();
      return;
    case child_phase::terminating: {
      c->phase = child_phase::stopped;
      if (steps_.empty())
        return;
      auto& front = steps_.front();
      if (front.what == step::kind::terminate_all) {
        if (--parallel_outstanding_ == 0)
          step_done();
      } else if (front.what == step::kind::terminate && front.key == c->key) {
        terminated(front, c);
        step_done();
      }
      return;
    }
    default:
      c->phase = child_phase::stopped;
      if (!steps_.empty()) {
        pending_.push_back({c->key, c->gen, std::move(how)});
        return;
      }
      handle_exit(*c, how);
  }
}

void supervisor_plan::timer_fired(const plan_timer& t) {
  if (t.kind == timer_kind::group_backoff) {
    if (t.gen == wait_token_ && waiting_ && !steps_.empty()
        && steps_.front().what == step::kind::wait)
      step_done();
    return;
  }
  if (t.kind == timer_kind::shutdown_all_deadline) {
    if (t.gen != parallel_epoch_)
      return;
    for (auto& c : children_)
      if (c.alive && c.phase == child_phase::terminating)
        kill(c);
    return;
  }
  auto* c = entry(t.key);
  if (c == nullptr || c->gen != t.gen)
    return;
  switch (t.kind) {
    case timer_kind::restart_backoff:
      if (c->phase == child_phase::restarting && !shutting_down_) {
        enqueue(step{step::kind::start, c->key, purpose::restart, {}, {}});
        run_steps();
      }
      return;
    case timer_kind::try_again:
      if (c->phase != child_phase::restarting || shutting_down_)
        return;
      if (count_restart(*c, last_start_error_)) {
        restart_by_strategy(*c);
        run_steps();
      }
      return;
    case timer_kind::shutdown_deadline:
      if (c->phase == child_phase::terminating && c->alive)
        kill(*c);
      return;
    case timer_kind::backoff_reset:
      if (c->restarts_in_row == t.count)
        c->restarts_in_row = 0;
      return;
    default:
      return;
  }
}

// -- decisions -----------------------------------------------------------------------------------

void supervisor_plan::handle_exit(plan_entry& c, const child_exit& how) {
  if (shutting_down_)
    return;
  const auto decision = decide_restart(c.spec.restart, how.how);
  if (decision != restart_decision::restart) {
    const bool significant = c.spec.significant;
    if (decision == restart_decision::remove)
      erase(c.key);
    // A significant child that gave up did not end: its failure is no reason for any_significant to
    // stop cleanly. It is gone, though, so all_significant looks again whether any is left.
    if (significant && (!how.gave_up || cfg_.shutdown_mode == auto_shutdown::all_significant))
      check_auto_shutdown();
    return;
  }
  if (how.how == exit_kind::abnormal) {
    auto a = action(plan_action::kind::report);
    a.text = fmt::format("child {} failed: {}", name_of(c), how.text);
    emit(std::move(a));
  }
  if (!count_restart(c, how.text))
    return;
  restart_by_strategy(c);
  run_steps();
}

bool supervisor_plan::count_restart(const plan_entry& c, const std::string& why) {
  if (window_.add(now_))
    return true;
  auto text = fmt::format("restart limit reached: {} in {} s (last: child {}: {})",
                          cfg_.intensity == 0   ? std::string{"no restart allowed"}
                          : cfg_.intensity == 1 ? std::string{"more than 1 restart"}
                                                : fmt::format("more than {} restarts", cfg_.intensity),
                          cfg_.period.count(), name_of(c), why);
  auto a = action(plan_action::kind::report);
  a.text = "giving up: " + text;
  emit(std::move(a));
  begin_shutdown(quit_reason::gave_up, std::move(text));
  return false;
}

// The one strategy function, for a child that exited and for a retry after a failed restart (then
// `failed` is not alive either). Terminate and start steps skip children that are already stopped
// or running when their turn comes, so both callers enqueue the same steps.
void supervisor_plan::restart_by_strategy(plan_entry& failed) {
  const auto key = failed.key;
  switch (cfg_.how) {
    case strategy::one_for_one:
    case strategy::simple_one_for_one:
      start_after_backoff(failed);
      return;
    case strategy::one_for_all:
      for (auto i = children_.rbegin(); i != children_.rend(); ++i)
        if (i->key != key)
          enqueue(step{step::kind::terminate, i->key, purpose::restart, {}, {}});
      enqueue_group_backoff(failed);
      for (auto& c : children_)
        enqueue(step{step::kind::start, c.key, purpose::restart, {}, {}});
      return;
    case strategy::rest_for_one: {
      auto pos = std::find_if(children_.begin(), children_.end(),
                              [key](const plan_entry& c) { return c.key == key; });
      for (auto i = children_.end(); i != pos + 1;)
        --i, enqueue(step{step::kind::terminate, i->key, purpose::restart, {}, {}});
      enqueue_group_backoff(*pos);
      for (auto i = pos; i != children_.end(); ++i)
        enqueue(step{step::kind::start, i->key, purpose::restart, {}, {}});
      return;
    }
  }
}

void supervisor_plan::start_after_backoff(plan_entry& c) {
  const auto n = c.restarts_in_row++;
  std::uniform_real_distribution<double> u{0.0, 1.0};
  const auto delay = backoff_delay(c.spec.backoff, n, u(rng_));
  if (delay.count() <= 0) {
    enqueue(step{step::kind::start, c.key, purpose::restart, {}, {}});
    return;
  }
  c.phase = child_phase::restarting;
  timer(timer_kind::restart_backoff, c.key, c.gen, delay);
}

// Group strategies: the failed child's backoff delays the start of the whole group.
void supervisor_plan::enqueue_group_backoff(plan_entry& failed) {
  const auto n = failed.restarts_in_row++;
  std::uniform_real_distribution<double> u{0.0, 1.0};
  const auto delay = backoff_delay(failed.spec.backoff, n, u(rng_));
  if (delay.count() > 0)
    enqueue(step{step::kind::wait, failed.key, purpose::restart, {}, delay});
}

void supervisor_plan::check_auto_shutdown() {
  if (shutting_down_)
    return;
  switch (cfg_.shutdown_mode) {
    case auto_shutdown::never:
      return;
    case auto_shutdown::any_significant:
      begin_shutdown(quit_reason::auto_shutdown, {});
      return;
    case auto_shutdown::all_significant: {
      // Look from the child found alive last time: with thousands of children ending one by one,
      // rescanning from the start each time would be quadratic.
      const auto n = children_.size();
      for (std::size_t k = 0; k < n; ++k) {
        const auto i = (alive_hint_ + k) % n;
        const auto& c = children_[i];
        if (c.spec.significant && (c.alive || c.phase == child_phase::restarting)) {
          alive_hint_ = i;
          return;
        }
      }
      begin_shutdown(quit_reason::auto_shutdown, {});
      return;
    }
  }
}

// -- requests ------------------------------------------------------------------------------------

std::uint64_t supervisor_plan::start_child(std::optional<plan_child> spec, std::uint64_t token) {
  auto& c = add(spec ? std::move(*spec) : template_);
  const auto key = c.key;
  enqueue(step{step::kind::start, key, purpose::api_start, token, {}});
  run_steps();
  return key;
}

void supervisor_plan::terminate_child(const std::string& id, std::uint64_t token) {
  if (simple())
    return reply_error(token, errc::simple_one_for_one, "terminate_child needs a handle here");
  auto* c = entry_id(id);
  if (c == nullptr)
    return reply_error(token, errc::not_found, id);
  if (!c->alive) {
    c->phase = child_phase::stopped;
    ++c->gen; // cancels a scheduled restart
    if (c->spec.restart == restart_type::temporary)
      erase(c->key);
    return reply_ok(token, 0);
  }
  enqueue(step{step::kind::terminate, c->key, purpose::api_start, token, {}});
  run_steps();
}

void supervisor_plan::terminate_key(std::uint64_t key, std::uint64_t token) {
  auto* c = entry(key);
  if (c == nullptr)
    return reply_error(token, errc::not_found, "no such child");
  enqueue(step{step::kind::terminate, key, purpose::api_start, token, {}});
  run_steps();
}

// restart_child and delete_child act only on a stopped child: returns it, or replies why not.
plan_entry* supervisor_plan::stopped_child(const std::string& id, std::uint64_t token,
                                           const char* what) {
  if (simple()) {
    reply_error(token, errc::simple_one_for_one, fmt::format("{} is not available", what));
    return nullptr;
  }
  auto* c = entry_id(id);
  if (c == nullptr)
    reply_error(token, errc::not_found, id);
  else if (c->alive)
    reply_error(token, errc::running, id);
  else if (c->phase == child_phase::restarting)
    reply_error(token, errc::restarting, id);
  else
    return c;
  return nullptr;
}

void supervisor_plan::restart_child(const std::string& id, std::uint64_t token) {
  if (auto* c = stopped_child(id, token, "restart_child")) {
    enqueue(step{step::kind::start, c->key, purpose::api_restart, token, {}});
    run_steps();
  }
}

void supervisor_plan::delete_child(const std::string& id, std::uint64_t token) {
  if (auto* c = stopped_child(id, token, "delete_child")) {
    erase(c->key);
    reply_ok(token, 0);
  }
}

} // namespace shardflow
