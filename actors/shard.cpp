#include <shardflow/actors/shard.hpp>

#include <algorithm>
#include <memory>
#include <optional>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/messages.hpp>
#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

struct shard_state {
  static inline const char* name = "shardflow.shard";

  shard_config cfg;
  caf::actor sup;
  caf::actor feeder;
  caf::actor sink;
  std::unique_ptr<batch_processor> proc;
  std::uint64_t generation = 0;
  std::uint64_t received = 0;
  std::uint64_t acked = 0;
  std::uint64_t sink_failures = 0;
  std::optional<sequence_number> last_acked;
  // checkpoints: one in flight; the newest position waiting behind it; the end marker (an empty
  // checkpoint) always after the positions
  std::optional<checkpoint> in_flight;
  std::optional<checkpoint> waiting;
  bool waiting_end = false;
  bool backing_off = false;
  unsigned retry_attempt = 0;
  std::uint64_t retry_gen = 0;
  std::uint64_t tick_gen = 0;
  // stopping
  bool stopping = false;
  caf::error quit_reason;
  std::vector<caf::response_promise> stop_waiters;
};

using shard_ptr = caf::stateful_actor<shard_state>*;

void save(shard_ptr self, checkpoint cp);

void finish_if_done(shard_ptr self) {
  auto& st = self->state;
  if (!st.stopping || st.in_flight || st.waiting || st.waiting_end || st.backing_off)
    return;
  for (auto& rp : st.stop_waiters)
    rp.deliver(st.last_acked);
  st.stop_waiters.clear();
  self->quit(st.quit_reason);
}

// Sends the next checkpoint to the sink unless one is in flight or a retry is pending.
void pump(shard_ptr self) {
  auto& st = self->state;
  if (st.in_flight || st.backing_off) {
    return;
  }
  if (st.waiting) {
    auto cp = std::move(*st.waiting);
    st.waiting.reset();
    save(self, std::move(cp));
  } else if (st.waiting_end) {
    st.waiting_end = false;
    save(self, checkpoint{});
  } else {
    finish_if_done(self);
  }
}

void submit(shard_ptr self, std::optional<checkpoint> cp) {
  if (!cp)
    return;
  auto& st = self->state;
  if (cp->position)
    st.waiting = std::move(cp); // supersedes an older position still waiting
  else
    st.waiting_end = true;
  pump(self);
}

void save(shard_ptr self, checkpoint cp) {
  auto& st = self->state;
  st.in_flight = cp;
  self->request(st.sink, st.cfg.checkpoint_timeout, save_atom::value, st.cfg.id, st.generation, cp)
    .then(
      [self, cp](caf::ok_atom) {
        auto& st = self->state;
        st.in_flight.reset();
        st.retry_attempt = 0;
        ++st.acked;
        if (cp.position) {
          st.last_acked = cp.position;
          self->send(st.feeder, acked_atom::value, *cp.position);
        }
        pump(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        if (code_of(err) == errc::stale_generation) {
          self->quit(std::move(err)); // a newer incarnation owns the shard
          return;
        }
        // Never taken as success: the checkpoint goes back in line (unless a newer one is there).
        auto failed = std::move(*st.in_flight);
        st.in_flight.reset();
        if (!failed.position)
          st.waiting_end = true;
        else if (!st.waiting)
          st.waiting = std::move(failed);
        ++st.sink_failures;
        const auto delay = std::min<std::chrono::milliseconds>(
          st.cfg.retry_max, st.cfg.retry_min * (1LL << std::min(st.retry_attempt, 20u)));
        ++st.retry_attempt;
        fmt::print(stderr, "shardflow: shard {}: checkpoint save failed ({}); retry {} in {} ms\n",
                   st.cfg.id, self->system().render(err), st.retry_attempt, delay.count());
        st.backing_off = true;
        self->delayed_send(self, delay, retry_atom::value, ++st.retry_gen);
      });
}

void schedule_tick(shard_ptr self) {
  auto& st = self->state;
  if (st.cfg.heartbeat_interval.count() > 0)
    self->delayed_send(self, st.cfg.heartbeat_interval, tick_atom::value, ++st.tick_gen);
}

// Runs the final shutdown of the processor and quits once its checkpoint is acknowledged.
void stop(shard_ptr self, shutdown_reason why, caf::error quit_reason) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.quit_reason = std::move(quit_reason);
  if (why == shutdown_reason::zombie) { // the lease is gone: write nothing more
    st.waiting.reset();
    st.waiting_end = false;
    st.backing_off = false;
  }
  if (st.proc)
    submit(self, st.proc->shutdown(why, self->clock().now()));
  if (why == shutdown_reason::terminate)
    submit(self, checkpoint{}); // after the last position: the shard has ended
  finish_if_done(self);
}

caf::behavior shard_impl(shard_ptr self, shard_config cfg, caf::actor sup, caf::actor feeder,
                         caf::actor sink) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.sup = std::move(sup);
  st.feeder = std::move(feeder);
  st.sink = std::move(sink);
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
        make_error(errc::not_found, fmt::format("shard {}: its feeder stopped ({})", st.cfg.id,
                                                self->system().render(msg.reason))));
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason == caf::exit_reason::user_shutdown)
      stop(self, shutdown_reason::requested, msg.reason);
    else if (msg.reason)
      self->quit(msg.reason);
  });
  return {
    [self](start_atom) {
      auto rp = self->make_response_promise();
      auto& st = self->state;
      self->request(st.sink, st.cfg.checkpoint_timeout, load_atom::value, st.cfg.id)
        .then(
          [self, rp](stored_checkpoint& stored) mutable {
            auto& st = self->state;
            st.generation = stored.generation;
            st.last_acked = stored.position;
            auto f = st.cfg.make_flusher(st.cfg.id);
            st.proc = std::make_unique<batch_processor>(st.cfg.id, std::move(f), st.cfg.batch,
                                                        self->clock().now());
            self->request(st.feeder, caf::infinite, attach_atom::value, stored.position)
              .then(
                [self, rp](caf::ok_atom) mutable {
                  auto& st = self->state;
                  rp.deliver(caf::ok_atom::value);
                  self->send(st.feeder, demand_atom::value,
                             static_cast<std::uint64_t>(st.cfg.credit),
                             static_cast<std::uint64_t>(st.cfg.credit_bytes));
                  schedule_tick(self);
                },
                [self](caf::error& err) { self->quit(std::move(err)); });
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
      return rp;
    },
    [self](records_atom, const record_batch& batch) {
      auto& st = self->state;
      if (!st.proc || st.stopping)
        return; // after a stop began: the next incarnation reads these again
      st.received += batch.size();
      submit(self, st.proc->process(batch, self->clock().now()));
      self->send(st.feeder, demand_atom::value, static_cast<std::uint64_t>(batch.size()),
                 static_cast<std::uint64_t>(payload_bytes(batch)));
    },
    [self](end_atom) { stop(self, shutdown_reason::terminate, caf::exit_reason::normal); },
    [self](tick_atom, std::uint64_t gen) {
      auto& st = self->state;
      if (gen != st.tick_gen || !st.proc || st.stopping)
        return;
      const auto now = self->clock().now();
      submit(self, st.proc->heartbeat(now));
      if (st.proc->watchdog_expired(now)) {
        self->quit(make_error(errc::watchdog_timeout,
                              fmt::format("shard {}: no records for {} ms", st.cfg.id,
                                          st.cfg.batch.watchdog_timeout.count())));
        return;
      }
      schedule_tick(self);
    },
    [self](retry_atom, std::uint64_t gen) {
      auto& st = self->state;
      if (gen != st.retry_gen || !st.backing_off)
        return;
      st.backing_off = false;
      pump(self);
    },
    [self](flush_atom, flush_mode mode) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.proc || st.stopping)
        return make_error(errc::processor_stopped, "the shard is not running");
      submit(self, st.proc->flush(mode, self->clock().now()));
      return caf::ok_atom::value;
    },
    [self](shutdown_atom, shutdown_reason why) {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      st.stop_waiters.push_back(rp);
      stop(self, why,
           why == shutdown_reason::terminate ? caf::error{} : caf::exit_reason::user_shutdown);
      return rp;
    },
    [self](stats_atom) {
      auto& st = self->state;
      shard_stats result;
      result.id = st.cfg.id;
      result.generation = st.generation;
      result.received = st.received;
      result.acked = st.acked;
      result.sink_failures = st.sink_failures;
      result.last_acked = st.last_acked;
      if (st.proc)
        result.processor = st.proc->stats();
      return result;
    },
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

child_spec shard_group(shard_group_config cfg) {
  child_spec feeder_spec;
  feeder_spec.id = "feeder";
  feeder_spec.start = [source = cfg.source, fcfg = cfg.feeder](start_context& ctx) {
    return caf::expected<caf::actor>{spawn_feeder(ctx.self, source, fcfg)};
  };
  child_spec shard_spec;
  shard_spec.id = "shard";
  shard_spec.restart = cfg.finite ? restart_type::transient : restart_type::permanent;
  shard_spec.significant = cfg.finite;
  shard_spec.backoff = cfg.backoff;
  shard_spec.shutdown = shutdown_spec::after(cfg.shutdown_timeout);
  shard_spec.start = [scfg = cfg.shard,
                      sink = cfg.sink](start_context& ctx) -> caf::expected<caf::actor> {
    auto feeder = ctx.sibling("feeder");
    if (!feeder)
      return make_error(errc::not_found, fmt::format("shard {}: no feeder is running", scfg.id));
    return spawn_shard(ctx.self, scfg, feeder, sink);
  };
  supervisor_flags flags;
  flags.how = strategy::rest_for_one;
  flags.intensity = cfg.intensity;
  flags.period = cfg.period;
  flags.shutdown_mode = cfg.finite ? auto_shutdown::any_significant : auto_shutdown::never;
  flags.start_timeout = cfg.start_timeout;
  flags.report = cfg.report ? cfg.report : [id = cfg.shard.id](const std::string& what) {
    fmt::print(stderr, "shardflow: {}: {}\n", id, what);
  };
  auto result
    = supervisor_child(cfg.shard.id, flags, {std::move(feeder_spec), std::move(shard_spec)},
                       cfg.finite ? restart_type::transient : restart_type::permanent, cfg.finite);
  return result;
}

} // namespace shardflow
