#include <shardflow/actors/shard.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/messages.hpp>
#include <shardflow/core/checkpoint_outbox.hpp>
#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

using time_point = caf::actor_clock::time_point;

// No time (of a timer that is not needed): the shard's times are plain time points, not optionals
// (8 bytes each instead of 16: 10,000 idle shards).
constexpr time_point never = time_point::max();

struct shard_state {
  static inline const char* name = "shardflow.shard";

  shard_config cfg;
  caf::actor sup;
  caf::actor feeder;
  caf::actor sink;
  std::unique_ptr<batch_processor> proc;
  std::uint64_t generation = 0;
  std::uint64_t received = 0;
  std::optional<sequence_number> last_acked;
  bool end_acked = false; // the last acknowledged checkpoint is the end marker
  checkpoint_outbox outbox;
  // ONE timer for everything the shard times (see `arm`): the heartbeat, the checkpoint load's
  // deadline and the outbox's (a save's deadline, the end of a retry backoff).
  time_point next_tick = never;     // heartbeats, from the start on
  time_point load_deadline = never; // while the checkpoint load is outstanding (and timed here)
  time_point due = never;           // while the input is quiet: the processor's next_due()
  time_point armed = never;         // the earliest wake-up outstanding
  std::uint64_t wake_gen = 0;       // of the wake-up `armed` is
  bool finished = false;                   // quit: nothing more to time
  bool quiet = false;                      // the feeder said idle, no records since
  // Credit taken by batches processed since the last demand; given back once it reaches half of
  // the window (records or bytes), so a window of several batches costs one demand per half.
  std::uint64_t owed = 0;
  std::uint64_t owed_bytes = 0;
  // stopping
  bool stopping = false;
  bool dropped = false; // a batch came after the halt and was dropped: the input did not end here
  caf::error quit_reason;
  std::vector<caf::response_promise> stop_waiters;
};

using shard_ptr = caf::stateful_actor<shard_state>*;

// -- meters (core/shard_meters.hpp) --------------------------------------------------------------

std::uint64_t meter_position(const std::optional<sequence_number>& x) {
  if (!x)
    return shard_meters::no_position;
  return x->base.to_uint64().value_or(shard_meters::no_position);
}

void meter_start(shard_state& st, const stored_checkpoint& stored) {
  auto* m = st.cfg.meters.get();
  if (m == nullptr)
    return;
  if (m->generation.exchange(stored.generation, std::memory_order_relaxed) != 0)
    m->restarts.fetch_add(1, std::memory_order_relaxed);
  m->acked_position.store(meter_position(stored.position), std::memory_order_relaxed);
  m->acked_end.store(stored.ended, std::memory_order_relaxed);
  m->outcome.store(shard_outcome::running, std::memory_order_relaxed);
}

void meter_ack(shard_state& st, const checkpoint& cp) {
  auto* m = st.cfg.meters.get();
  if (m == nullptr)
    return;
  m->checkpoints_acked.fetch_add(1, std::memory_order_relaxed);
  if (cp.position)
    m->acked_position.store(meter_position(cp.position), std::memory_order_relaxed);
  m->acked_end.store(!cp.position, std::memory_order_relaxed);
}

void meter_finish(shard_state& st) {
  if (auto* m = st.cfg.meters.get())
    m->outcome.store(st.end_acked ? shard_outcome::ended : shard_outcome::stopped,
                     std::memory_order_relaxed);
}

// -- checkpoints: the outbox decides, these carry out its actions ---------------------------------

void apply(shard_ptr self, checkpoint_outbox::step next);

void finish(shard_ptr self) {
  auto& st = self->state;
  for (auto& rp : st.stop_waiters)
    rp.deliver(st.last_acked);
  st.stop_waiters.clear();
  meter_finish(st);
  st.finished = true;
  self->quit(st.quit_reason);
}

// Returns whether the answer to save `id` is the answer to the save in flight: not when the outbox
// was fenced meanwhile, nor when that save was overdue (failed) and another one left since.
bool current_save(const shard_state& st, std::uint64_t id) {
  return st.outbox.in_flight() && st.outbox.in_flight_id() == id;
}

// Sets the outbox's time (a save leaving now is overdue at now + checkpoint_timeout).
checkpoint_outbox& outbox_at(shard_ptr self) {
  self->state.outbox.at(self->clock().now());
  return self->state.outbox;
}

void on_saved(shard_ptr self, const checkpoint& cp) {
  auto& st = self->state;
  if (cp.position) {
    st.last_acked = cp.position;
    self->send(st.feeder, acked_atom::value, *cp.position);
  }
  st.end_acked = !cp.position;
  meter_ack(st, cp);
  apply(self, outbox_at(self).ack());
}

void on_save_failed(shard_ptr self, caf::error& err) {
  auto& st = self->state;
  if (code_of(err) == errc::stale_generation) {
    st.outbox.fence();
    st.finished = true;
    self->quit(std::move(err)); // a newer incarnation owns the shard
    return;
  }
  auto next = outbox_at(self).failed(self->clock().now());
  if (next)
    st.cfg.log(log_level::warning,
               fmt::format("{}: checkpoint save failed ({}: {}); retry {} in {} ms", st.cfg.id,
                           to_string(code_of(err)), text_of(err), next->attempt,
                           next->delay.count()));
  apply(self, std::move(next));
}

// Without a CAF timeout: the outbox holds the save's deadline and the shard's one timer checks it
// (`on_wake`). An answer that comes after the save was overdue is not for the save then in flight.
void send_save(shard_ptr self, checkpoint cp, std::uint64_t id) {
  auto& st = self->state;
  self->request(st.sink, caf::infinite, save_atom::value, st.cfg.id, st.generation, cp)
    .then(
      [self, cp, id](caf::ok_atom) {
        if (current_save(self->state, id))
          on_saved(self, cp);
      },
      [self, id](caf::error& err) {
        if (current_save(self->state, id))
          on_save_failed(self, err);
      });
}

void arm(shard_ptr self);

void apply(shard_ptr self, checkpoint_outbox::step next) {
  if (!next)
    return;
  switch (next->what) {
    case outbox_action::kind::save:
      send_save(self, std::move(next->cp), next->ticket);
      arm(self); // for its deadline, unless a wake-up comes before it anyway
      return;
    case outbox_action::kind::retry:
      arm(self); // the outbox's next deadline is the end of the backoff
      return;
    case outbox_action::kind::done:
      finish(self);
      return;
  }
}

void submit(shard_ptr self, std::optional<checkpoint> cp) {
  if (cp)
    apply(self, outbox_at(self).offer(std::move(*cp)));
}

// The shard's one timer: a wake-up at the earliest of the next heartbeat, the load's deadline and
// the outbox's, unless one is already outstanding for that time or earlier (it arms the next one
// when it fires). CAF 0.17 cannot cancel a timer, and each costs a wake-up of CAF's clock thread
// and a clock entry until it fires: with a request timeout per load and per save, a retry timer and
// the heartbeat, a shard's start and first checkpoints were four of them. With a heartbeat longer
// than the timeouts are short the heartbeat is the only one. A wake-up that finds nothing due (a
// later one superseded by an earlier one) does nothing but arm.
void arm(shard_ptr self) {
  auto& st = self->state;
  if (st.finished)
    return;
  auto need = std::min({st.next_tick, st.load_deadline, st.due});
  if (auto t = st.outbox.next_deadline())
    need = std::min(need, *t);
  if (need == never || st.armed <= need)
    return;
  st.armed = need;
  const auto now = self->clock().now();
  if (need <= now)
    self->send(self, tick_atom::value, ++st.wake_gen);
  else
    self->delayed_send(self, need - now, tick_atom::value, ++st.wake_gen);
}

// Runs the final shutdown of the processor and quits once its checkpoint is acknowledged.
void stop(shard_ptr self, shutdown_reason why, caf::error quit_reason) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.quit_reason = std::move(quit_reason);
  if (why == shutdown_reason::zombie) // the lease is gone: write nothing more
    st.outbox.drop();
  bool ended = false; // the processor's terminate answers the end marker when no position is due
  if (st.proc) {
    auto last = st.proc->shutdown(why, self->clock().now());
    ended = last && !last->position;
    submit(self, std::move(last));
  }
  if (why == shutdown_reason::terminate && !ended)
    submit(self, checkpoint{}); // after the last position: the shard has ended
  st.next_tick = never; // a stopping shard has no heartbeat (its deadlines still count)
  apply(self, outbox_at(self).close());
}

// -- start: load the checkpoint, make the processor, attach to the feeder -------------------------

void attached(shard_ptr self, caf::response_promise& rp) {
  auto& st = self->state;
  rp.deliver(caf::ok_atom::value);
  self->send(st.feeder, demand_atom::value, static_cast<std::uint64_t>(st.cfg.credit),
             static_cast<std::uint64_t>(st.cfg.credit_bytes));
}

void loaded(shard_ptr self, caf::response_promise& rp, const stored_checkpoint& stored) {
  auto& st = self->state;
  st.load_deadline = never; // its wake-up, if one is armed for it, finds nothing due
  st.generation = stored.generation;
  st.last_acked = stored.position;
  std::unique_ptr<flusher> f;
  try {
    f = st.cfg.make_flusher(st.cfg.id);
  } catch (const error&) {
    throw; // keeps its code and text (error_from)
  } catch (const std::exception& e) { // else CAF renders it as system_error(runtime_error, ...)
    throw error{errc::flusher_failed,
                fmt::format("shard {}: the flusher factory failed: {}", st.cfg.id, e.what())};
  }
  st.proc = std::make_unique<batch_processor>(st.cfg.id, std::move(f), st.cfg.batch,
                                              self->clock().now());
  meter_start(st, stored); // started: an incarnation whose flusher could not be made was not
  self->request(st.feeder, caf::infinite, attach_atom::value, stored.position)
    .then([self, rp](caf::ok_atom) mutable { attached(self, rp); },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

// The heartbeat runs from here on. When its first wake-up comes before the load's deadline
// (checkpoint_timeout), the load leaves without a CAF timeout and that wake-up checks the deadline:
// the start costs one clock entry, not two. Without one, the load keeps its CAF request timeout:
// one entry either way, and a request timeout's is smaller than a delayed message's (an idle
// shard keeps it for the whole timeout).
caf::result<caf::ok_atom> on_start(shard_ptr self) {
  auto rp = self->make_response_promise();
  auto& st = self->state;
  const auto now = self->clock().now();
  if (st.cfg.heartbeat_interval.count() > 0)
    st.next_tick = now + st.cfg.heartbeat_interval;
  caf::duration timeout = caf::infinite;
  if (st.cfg.checkpoint_timeout.count() > 0) {
    if (st.next_tick != never && st.cfg.heartbeat_interval < st.cfg.checkpoint_timeout)
      st.load_deadline = now + st.cfg.checkpoint_timeout;
    else
      timeout = caf::duration{st.cfg.checkpoint_timeout};
  }
  arm(self);
  self->request(st.sink, timeout, load_atom::value, st.cfg.id)
    .then([self, rp](stored_checkpoint& stored) mutable { loaded(self, rp, stored); },
          [self](caf::error& err) { self->quit(std::move(err)); });
  return rp;
}

// -- the other handlers ---------------------------------------------------------------------------

// Gives the credit `batch` took back to the feeder once half the window is owed. The feeder is
// never starved by the wait: it stops only when the shard holds a whole window (records or bytes)
// unreturned, and once the shard has processed those it owes at least half and gives it back.
void give_back(shard_ptr self, const record_batch& batch) {
  auto& st = self->state;
  st.owed += batch.size();
  st.owed_bytes += payload_bytes(batch);
  if (st.owed < std::max<std::uint64_t>(1, st.cfg.credit / 2)
      && st.owed_bytes < std::max<std::uint64_t>(1, st.cfg.credit_bytes / 2))
    return;
  self->send(st.feeder, demand_atom::value, st.owed, st.owed_bytes);
  st.owed = 0;
  st.owed_bytes = 0;
}

void on_records(shard_ptr self, const record_batch& batch) {
  auto& st = self->state;
  if (!st.proc || st.stopping || (st.cfg.halt && st.cfg.halt->load(std::memory_order_relaxed))) {
    st.dropped = true;
    return; // after a stop began: dropped, not checkpointed, so a rerun reads these again
  }
  st.received += batch.size();
  st.quiet = false; // records again: the intervals are applied as they are processed
  st.due = never;
  if (auto* m = st.cfg.meters.get())
    m->records_received.fetch_add(batch.size(), std::memory_order_relaxed);
  submit(self, st.proc->process(batch, self->clock().now()));
  give_back(self, batch);
}

// Runs the heartbeat (the flusher's, the processor's checkpoint and watchdog) when it is due: a
// stopping shard has none; before its checkpoint is loaded there is nothing to beat yet. Returns
// false when the watchdog ended the shard.
bool heartbeat(shard_ptr self, time_point now) {
  auto& st = self->state;
  if (now < st.next_tick)
    return true;
  st.next_tick = now + st.cfg.heartbeat_interval;
  if (!st.proc)
    return true;
  submit(self, st.proc->heartbeat(now));
  if (st.proc->watchdog_expired(now)) {
    st.finished = true;
    self->quit(make_error(errc::watchdog_timeout,
                          fmt::format("shard {}: no progress for {} ms with records to process",
                                      st.cfg.id, st.cfg.batch.watchdog_timeout.count())));
    return false;
  }
  return true;
}

// The input is quiet (the feeder said idle): the shard wakes when the processor's intervals next
// do something by themselves (its last records flushed after flush_interval, checkpointed after
// checkpoint_interval), not only at its next heartbeat. Only while quiet: a busy shard applies the
// intervals with each batch, and an idle shard with nothing held arms nothing more.
// What is due now is done at once (one tick); only a time after now is armed, so a flusher that
// holds its records (an interval of 0 keeps them due) cannot make the shard wake itself in a loop.
// Runs on the idle message and on every wake-up while quiet: a time due after the next heartbeat
// is kept (`arm` wakes at the heartbeat first), and what the heartbeat did is counted in.
void quiet(shard_ptr self, time_point now) {
  auto& st = self->state;
  st.due = never;
  if (!st.quiet || !st.proc || st.stopping)
    return;
  auto t = st.proc->next_due();
  if (t && *t <= now) {
    submit(self, st.proc->tick(now));
    t = st.proc->next_due();
  }
  if (t && *t > now)
    st.due = *t;
}

// The shard's timer fired: what is due is done (a load or save past its deadline fails as a CAF
// request timeout did; a retry whose backoff is over leaves), then the next wake-up is armed.
void on_wake(shard_ptr self, std::uint64_t gen) {
  auto& st = self->state;
  if (gen == st.wake_gen)
    st.armed = never;
  if (st.finished)
    return;
  const auto now = self->clock().now();
  if (now >= st.load_deadline) {
    st.finished = true;
    self->quit(caf::make_error(caf::sec::request_timeout));
    return;
  }
  if (st.outbox.overdue(now)) {
    auto err = caf::make_error(caf::sec::request_timeout);
    on_save_failed(self, err);
  }
  st.outbox.at(now);
  apply(self, st.outbox.retry_due(now));
  if (st.finished || !heartbeat(self, now))
    return;
  quiet(self, now); // the intervals' turn when due, and when they act next
  arm(self);
}

shard_stats stats_of(const shard_state& st) {
  shard_stats result;
  result.id = st.cfg.id;
  result.generation = st.generation;
  result.received = st.received;
  result.acked = st.outbox.acked();
  result.sink_failures = st.outbox.failures();
  result.last_acked = st.last_acked;
  if (st.proc)
    result.processor = st.proc->stats();
  return result;
}

// Monitors the supervisor and the feeder, and turns exits and exceptions into stops and errors.
void watch(shard_ptr self) {
  auto& st = self->state;
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr& eptr) { return error_from(eptr); });
  self->monitor(st.sup);
  self->monitor(st.feeder);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source == st.sup.address())
      self->quit(msg.reason);
    else if (msg.source == st.feeder.address())
      self->quit(
        make_error(errc::feeder_stopped, fmt::format("shard {}: its feeder stopped ({})", st.cfg.id,
                                                     self->system().render(msg.reason))));
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason == caf::exit_reason::user_shutdown)
      stop(self, shutdown_reason::requested, msg.reason);
    else if (msg.reason)
      self->quit(msg.reason);
  });
}

caf::behavior shard_impl(shard_ptr self, shard_config cfg, caf::actor sup, caf::actor feeder,
                         caf::actor sink) {
  auto& st = self->state;
  st.outbox = checkpoint_outbox{{cfg.retry_min, cfg.retry_max, cfg.checkpoint_timeout}};
  st.cfg = std::move(cfg);
  if (!st.cfg.log)
    st.cfg.log = stderr_log("shardflow");
  st.sup = std::move(sup);
  st.feeder = std::move(feeder);
  st.sink = std::move(sink);
  watch(self);
  return {
    [self](start_atom) { return on_start(self); },
    [self](records_atom, const record_batch& batch) { on_records(self, batch); },
    // The end of the input; when a halt dropped batches before it, the shard did not get there: it
    // stops without the end marker, as a stopped source does.
    [self](end_atom) {
      stop(self, self->state.dropped ? shutdown_reason::requested : shutdown_reason::terminate,
           caf::exit_reason::normal);
    },
    // The source stopped before its end: what is durable is checkpointed, the end is not, and the
    // shard ends normally (not restarted: its source would stop at the same place again).
    [self](stopped_atom) { stop(self, shutdown_reason::requested, caf::exit_reason::normal); },
    [self](tick_atom, std::uint64_t gen) { on_wake(self, gen); },
    [self](idle_atom) {
      if (self->state.proc && !self->state.stopping) {
        const auto now = self->clock().now();
        self->state.proc->idle(now);
        self->state.quiet = true;
        quiet(self, now);
        arm(self);
      }
    },
    // Pushes wait for the feeder's buffer: make what is held durable and checkpoint it now.
    [self](pressure_atom) {
      auto& st = self->state;
      if (st.proc && !st.stopping)
        submit(self, st.proc->checkpoint_now(self->clock().now()));
    },
    [self](flush_atom, flush_mode mode) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.proc || st.stopping)
        return make_error(errc::processor_stopped, "the shard is not running");
      submit(self, st.proc->flush(mode, self->clock().now()));
      return caf::ok_atom::value;
    },
    [self](shutdown_atom, shutdown_reason why) {
      auto rp = self->make_response_promise();
      self->state.stop_waiters.push_back(rp);
      stop(self, why,
           why == shutdown_reason::terminate ? caf::error{} : caf::exit_reason::user_shutdown);
      return rp;
    },
    [self](stats_atom) { return stats_of(self->state); },
  };
}

} // namespace

caf::actor spawn_shard(caf::event_based_actor* sup, shard_config cfg, caf::actor feeder,
                       caf::actor sink) {
  auto sup_hdl = caf::actor_cast<caf::actor>(sup);
  if (cfg.detached)
    return sup->spawn<caf::detached>(shard_impl, std::move(cfg), sup_hdl, std::move(feeder),
                                     std::move(sink));
  return sup->spawn(shard_impl, std::move(cfg), sup_hdl, std::move(feeder), std::move(sink));
}

namespace {

void erase_all(std::string& text, std::string_view what) {
  for (auto i = text.find(what); i != std::string::npos; i = text.find(what, i))
    text.erase(i, what.size());
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "code: text" (the supervisor's rendering of a shardflow error) -> "(code): text".
std::string coded(const std::string& what) {
  auto colon = what.find(": ");
  auto code = what.substr(0, colon);
  if (code.empty() || code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
    return ": " + what;
  if (colon == std::string::npos)
    return " (" + code + ")";
  return " (" + code + ")" + what.substr(colon);
}

} // namespace

std::string tidy_reason(std::string text, const shard_id& id) {
  erase_all(text, "shardflow: ");
  erase_all(text, "restart limit reached: ");
  erase_all(text, "child shard: "); // the group's shard: the line names it already
  std::vector<std::string> ids{id};
  // "(last: child X: ..." names group X (a root's line): "(last: X: ...", X not named again inside.
  constexpr std::string_view last_child = "(last: child ";
  for (auto i = text.find(last_child); i != std::string::npos; i = text.find(last_child, i)) {
    const auto start = i + last_child.size();
    if (auto end = text.find(": ", start); end != std::string::npos)
      ids.push_back(text.substr(start, end - start));
    text.erase(i + 7, 6);
  }
  for (auto& x : ids)
    if (!x.empty())
      erase_all(text, fmt::format("shard {}: ", x));
  return text;
}

std::string group_report_line(const shard_id& id, const std::string& what) {
  auto text = tidy_reason(what, id);
  constexpr std::string_view shard_failed = "child shard failed: ";
  constexpr std::string_view feeder_failed = "child feeder failed: ";
  constexpr std::string_view giving_up = "giving up: ";
  constexpr std::string_view shard_start_failed = "child shard failed to start: ";
  constexpr std::string_view feeder_start_failed = "child feeder failed to start: ";
  if (starts_with(text, shard_start_failed))
    return fmt::format("{}: failed to start{}", id, coded(text.substr(shard_start_failed.size())));
  if (starts_with(text, feeder_start_failed))
    return fmt::format("{}: its feeder failed to start{}", id,
                       coded(text.substr(feeder_start_failed.size())));
  if (starts_with(text, shard_failed))
    return fmt::format("{}: failed{}", id, coded(text.substr(shard_failed.size())));
  if (starts_with(text, feeder_failed))
    return fmt::format("{}: its feeder failed{}", id, coded(text.substr(feeder_failed.size())));
  if (starts_with(text, giving_up))
    return fmt::format("{}: gave up: {}", id, text.substr(giving_up.size()));
  return fmt::format("{}: {}", id, text);
}

child_spec shard_group(shard_group_config cfg) {
  child_spec feeder_spec;
  feeder_spec.id = feeder_child_id;
  // A feeder failure (its source, its dead-letter file) restarts the group under the same backoff
  // as a shard failure: without one, an output that fails for a moment gave up in milliseconds.
  feeder_spec.backoff = cfg.backoff;
  if (!cfg.feeder.halt)
    cfg.feeder.halt = cfg.shard.halt;
  feeder_spec.start = [source = cfg.source, fcfg = cfg.feeder](start_context& ctx) {
    return caf::expected<caf::actor>{spawn_feeder(ctx.self, source, fcfg)};
  };
  child_spec shard_spec;
  shard_spec.id = shard_child_id;
  shard_spec.restart = cfg.finite ? restart_type::transient : restart_type::permanent;
  shard_spec.significant = cfg.finite;
  shard_spec.backoff = cfg.backoff;
  shard_spec.shutdown = shutdown_spec::after(cfg.shutdown_timeout);
  shard_spec.start = [scfg = cfg.shard,
                      sink = cfg.sink](start_context& ctx) -> caf::expected<caf::actor> {
    auto feeder = ctx.sibling(feeder_child_id);
    if (!feeder)
      return make_error(errc::start_failed, fmt::format("shard {}: no feeder is running", scfg.id));
    return spawn_shard(ctx.self, scfg, feeder, sink);
  };
  supervisor_flags flags;
  flags.how = strategy::rest_for_one;
  flags.intensity = cfg.intensity;
  flags.period = cfg.period;
  flags.shutdown_mode = cfg.finite ? auto_shutdown::any_significant : auto_shutdown::never;
  flags.start_timeout = cfg.start_timeout;
  flags.report = cfg.report
                   ? cfg.report
                   : [log = stderr_log("shardflow"), id = cfg.shard.id](const std::string& what) {
                       log(log_level::warning, group_report_line(id, what));
                     };
  std::vector<child_spec> children; // moved, not copied from an initializer list
  children.reserve(2);
  children.push_back(std::move(feeder_spec));
  children.push_back(std::move(shard_spec));
  return supervisor_child(cfg.shard.id, std::move(flags), std::move(children),
                          cfg.finite ? restart_type::transient : restart_type::permanent,
                          cfg.finite);
}

} // namespace shardflow
