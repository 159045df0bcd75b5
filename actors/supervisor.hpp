// actors/supervisor.hpp - an Erlang/OTP supervisor on CAF 0.17: strategies, restart types,
// intensity and period, ordered start and stop, nested trees, auto shutdown, and Akka-style backoff.
//
// A supervisor only spawns, watches and restarts. It starts its static children one after another in
// list order, each through a start handshake (the child answers `(start_atom) -> ok_atom` once its
// init is done, e.g. once a shard has loaded its checkpoint), and stops them in reverse order, each
// with its shutdown spec. Failure handling follows OTP exactly (Erlang/OTP's `supervisor` module
// documentation; core/restart_policy.hpp has the decision table and the intensity window):
//
//   one_for_one         only the exited child is restarted
//   one_for_all         the others are stopped in reverse start order, then all start in order
//   rest_for_one        the children started after it are stopped in reverse, then it and they start
//   simple_one_for_one  one template spec, children added with arguments and addressed by handle;
//                       stopped in parallel under one shared timer
//
// A restart whose start fails marks the child `restarting` and retries asynchronously (counted by the
// intensity), so the supervisor keeps answering meanwhile. More restarts than `intensity` within
// `period` seconds ends the supervisor: it stops every child in reverse order and exits with
// errc::restart_limit_reached (a context naming the last child and its exit reason). Unlike OTP's
// {shutdown, reached_max_restart_intensity} that is an ABNORMAL exit, so failures flow up: a permanent
// or transient parent restarts it (counted against its own intensity, which may give up in turn), and
// one_for_all / rest_for_one take its siblings along. With `auto_shutdown`, significant
// transient/temporary children that end by themselves shut the supervisor down with `user_shutdown`
// (OTP's `shutdown`), which is how a job of finite shards ends cleanly; a significant child that gave
// up (exited with restart_limit_reached) never triggers any_significant, and under all_significant
// it only stops counting as running (a temporary child is not restarted: its failure stays its own).
//
// A child that ends normally (or with `user_shutdown`) before its start handshake answer arrives has
// started and ended (a finite child with little to do): that is not a start failure; its exit is
// handled after the start sequence like any other.
//
// The decisions live in a pure state machine, core/supervisor_plan.hpp (child table, step queue,
// restart strategy, phases), tested without CAF; the actor only translates messages into its events
// and its actions into CAF calls.
//
// CAF specifics (verified on 0.17.6): the supervisor *monitors* its children and keeps strong handles
// to them; it never links, because `kill` passes through links untrappably. A child should monitor its
// supervisor and quit when it goes (`follow_supervisor`). An exit message to the supervisor (from its
// parent or the host) runs the ordered shutdown and then quits with the same reason. While a sequence
// (a start, a group restart, a shutdown) is under way, management requests wait in the mailbox.
// Generations on every child incarnation make stale timers, handshake replies and down messages
// harmless. Time comes from the actor clock, so tests run on CAF's deterministic test scheduler.
//
// Backoff (optional, per child): a restart waits min(max, min * 2^n) with jitter; the count resets
// after the child stayed up `reset_after`. Under one_for_one and simple_one_for_one only that child
// waits; under one_for_all and rest_for_one the failed child's backoff delays the start of the group
// (after its members were stopped). Keep `period` longer than the largest backoff, or the intensity
// window never fills.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include <shardflow/actors/messages.hpp>
#include <shardflow/core/restart_policy.hpp>
#include <shardflow/core/supervisor_plan.hpp>

namespace shardflow {

// strategy, auto_shutdown and shutdown_spec are declared in core/supervisor_plan.hpp.

/// What a start function gets from its supervisor.
struct start_context {
  /// The supervisor. Spawn the child from it (`self->spawn(...)`), without `linked` or `monitored`:
  /// the supervisor monitors the child itself.
  caf::event_based_actor* self;
  /// Arguments given to `start_child` under simple_one_for_one; empty otherwise.
  caf::message args;
  /// Returns the running child `id` of the same supervisor (e.g. a shard's feeder started earlier
  /// under rest_for_one), or an invalid handle.
  std::function<caf::actor(const std::string& id)> sibling;
};

/// Spawns a child. Returns its handle, an invalid handle for OTP's `ignore`, or an error.
using start_function = std::function<caf::expected<caf::actor>(start_context&)>;

/// Describes one child (OTP child spec).
struct child_spec {
  /// Unique among the supervisor's children (unused under simple_one_for_one).
  std::string id;
  /// Spawns the child.
  start_function start;
  /// When the child is restarted.
  restart_type restart = restart_type::permanent;
  /// How it is stopped; by default 5 s for workers and infinity for supervisors.
  std::optional<shutdown_spec> shutdown;
  /// Worker or supervisor (only affects defaults and `count_children`).
  child_kind kind = child_kind::worker;
  /// Whether its own exit may trigger the supervisor's auto shutdown.
  bool significant = false;
  /// Optional restart backoff.
  backoff_spec backoff;
  /// Whether the child answers the start handshake; without it, it counts as started once spawned.
  bool handshake = true;
};

/// Supervisor flags (OTP sup_flags); the defaults are OTP's.
struct supervisor_flags {
  strategy how = strategy::one_for_one;
  /// Restarts allowed within `period` before the supervisor gives up.
  int intensity = 1;
  /// The intensity window, in whole seconds (positive).
  std::chrono::seconds period{5};
  auto_shutdown shutdown_mode = auto_shutdown::never;
  /// How long a child may take to answer the start handshake.
  std::chrono::nanoseconds start_timeout = std::chrono::seconds(5);
  /// Seed of the backoff jitter.
  std::uint64_t seed = 0x5eed;
  /// The static children's start handshakes overlap: each is spawned once the one before it is
  /// spawned, not once it answered (core/supervisor_plan.hpp). For children that do not need each
  /// other up to start, such as shard groups under a root; a child that needs its sibling running
  /// (the feeder of a group) needs the default.
  bool parallel_start = false;
  /// With parallel_start: at most this many handshakes outstanding at once (0: no limit).
  std::size_t start_window = 0;
  /// Told about abnormal child exits and about giving up (for logs); may be empty.
  std::function<void(const std::string&)> report;
};

/// Checks `flags` and `specs` as OTP does; returns an error naming the problem, or none.
caf::error validate(const supervisor_flags& flags, const std::vector<child_spec>& specs);

/// Spawns a top-level supervisor in `sys` (the host's system), or returns the validation error. Its
/// static children start right away; send it `(start_atom)` to learn when they are up (or why they
/// failed: it then exits with errc::start_failed).
caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys, supervisor_flags flags,
                                           std::vector<child_spec> specs);

/// Returns a child spec that runs a nested supervisor (OTP supervision trees): `type` supervisor,
/// shutdown infinity, started once its own static children are up.
child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> specs,
                            restart_type restart = restart_type::permanent,
                            bool significant = false);

/// Makes `self` quit with its supervisor's exit reason when `sup` goes away (a killed supervisor
/// cannot stop its children itself). Installs `self`'s down handler.
void follow_supervisor(caf::scheduled_actor* self, const caf::actor& sup);

} // namespace shardflow

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::child_spec)
