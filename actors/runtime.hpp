// actors/runtime.hpp - the embedding API: shards under one supervision tree in a host's actor
// system, with a blocking facade for host threads and a front actor for hosts that are actors.
//
// A host application that already has a `caf::actor_system` creates a runtime, starts shards
// (shard id, flusher factory, batch configuration, record source or push mode), feeds records,
// reads stats and meters, and learns how each shard's life ended:
//
//     caf::actor_system sys{cfg};                    // cfg: shardflow::configure(cfg) first
//     auto rt = shardflow::runtime::start(sys, {});  // root supervisor + in-memory checkpoints
//     if (!rt)
//       return fail(rt.error());
//     shardflow::runtime& r = **rt;                  // start returns expected<unique_ptr<runtime>>
//     shardflow::shard_group_config s;
//     s.shard.id = "orders-0";
//     s.shard.make_flusher = my_flusher_factory;
//     r.start_shard(s);                              // no source: the host pushes
//     r.push("orders-0", batch);                     // waits while the shard is behind
//     r.stats("orders-0");
//     r.meters("orders-0")->acked_position.load(std::memory_order_relaxed);
//     auto err = r.shutdown();                       // every shard flushes and checkpoints; none
//     auto out = r.await(std::chrono::seconds(1));   //   when clean; out.shards[0].outcome: stopped
//
// The tree: a root supervisor (one_for_one) over one group per shard (rest_for_one over the shard's
// feeder and the shard; see actors/shard.hpp). A crashed shard is restarted by its group from its
// last durable checkpoint; its feeder replays what the checkpoint does not cover. A group that
// exceeds its restart intensity gives up (an abnormal exit): that shard alone gave up, and the
// others go on. With `runtime_config::restart_groups` true, the root restarts such a group, which
// counts against the root's intensity; beyond that the runtime ends with the root's reason.
//
// Outcomes: each shard's life ends `ended` (its records ended and it checkpointed its end),
// `stopped` (stop_shard or shutdown: final flush and checkpoint) or `gave_up` (its group exited
// abnormally and was not started again: records may be left; `shard_result::reason` says why).
// `await` returns them in start order with the runtime's exit reason; `clean()` tells a finished
// job from a failed one. The per-shard `shard_meters` (core/shard_meters.hpp) can be read from any
// thread at any time.
//
// Errors a host gets, each with a message naming the shard: errc::unknown_shard (never started
// here), errc::restarting (the shard or its group is being restarted: ask again), errc::shard_ended
// (it ended, was stopped or gave up), errc::shutting_down (shutdown is under way) and
// errc::runtime_ended (the tree is gone). Never CAF's raw request_receiver_down.
//
// The registry: the front actor caches each shard's group, feeder and shard handles and monitors
// them; the facade caches each shard's feeder in turn, so a push costs one request, straight to the
// feeder (when that feeder has died, the push goes through the front actor, which finds the new one
// or names the problem). A feeder or shard that goes down is looked up again (which_children of the
// group) on its next use only; after a group exits abnormally, the front actor also asks the root
// for its next incarnation every 100 ms, and a group that is neither running nor restarting for
// `start_timeout` plus 5 s (or whose spec is gone) has given up for good, unless its end was
// checkpointed meanwhile (then it ended). Any shard still running when the root goes down
// abnormally gave up with the root's reason. A sealed finite runtime whose last running shard is
// stopped ends.
//
// Threading: the blocking member functions (start_shard, push, end, stats, stop_shard, seal, await,
// shutdown) talk to the front actor through a scoped actor and must be called from host threads,
// never from inside an actor; one runtime may be used from one host thread at a time. `meters`,
// `shards`, `front`, `root` and `sink` may be called from any thread. A host that is itself an
// actor uses the front actor's messages instead (below): each is answered asynchronously, so it
// never blocks a scheduler thread.
//
// The front actor's protocol (`runtime::front()`, or `spawn_runtime` without the facade):
//
//   (start_child_atom, shard_group_config)    -> ok_atom          once the shard's group is up
//   (push_atom, shard_id, record_batch)       -> ok_atom          late while the shard's replay
//                                                                 buffer is over its push limit
//                                                                 (backpressure)
//   (push_atom, shard_id)                     -> actor            the shard's current feeder, for a
//                                                                 host that pushes to it directly
//                                                                 ((push_atom, record_batch) ->
//                                                                 ok_atom); ask again when it dies
//   (end_atom, shard_id)                      -> ok_atom          no more records for a pushed shard
//   (stats_atom, shard_id)                    -> shard_stats      the current incarnation's counters
//   (terminate_child_atom, shard_id)          -> ok_atom          stop_shard: stopped and forgotten
//   (seal_atom)                               -> ok_atom          finite runtimes: all shards are in
//   (await_atom)                              -> runtime_outcome  once the runtime has ended (seals
//                                                                 first); use a request timeout
//   (shutdown_atom)                           -> runtime_outcome  stops every shard, newest first,
//                                                                 then answers like await
//
// Errors come as the error of the reply, with the codes above. The front actor outlives the tree (it
// answers runtime_ended afterwards) and ends with the runtime object. An exit sent to it (a host
// without the facade ends its runtime so) first shuts the tree down in order, final checkpoints
// included, then ends the front actor and the sink the runtime made.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>

#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/core/shard_meters.hpp>

namespace shardflow {

// -- configuration and outcome -------------------------------------------------------------------

/// Configuration of a runtime's root supervisor.
struct runtime_config {
  /// Group restarts the root allows within `period` before it gives up (only with
  /// `restart_groups`). A group that gave up (its own `shard_group_config::intensity` spent) is an
  /// abnormal exit, so the root starts it again and counts that here: with groups whose backoff
  /// spaces their give-ups wider than `period` apart, the root never gives up and such a shard is
  /// retried for ever. Set 0 to end the whole runtime at the first give-up, the other shards
  /// stopped gracefully.
  int intensity = 100;
  std::chrono::seconds period{10};
  /// Whether the root restarts a shard group that gave up. False (the default) makes each group a
  /// temporary child of the root, as in OTP: a group that gave up is final and isolated. It is not
  /// started again, its shard's outcome is `gave_up` with the reason at once, the other shards go
  /// on, and a finite runtime ends once every shard has ended, stopped or given up (`clean()` is
  /// then false, and `shutdown()` names the shard): a host always tells a job that finished from
  /// one that gave up. True restarts it, counted by the root's `intensity`; a shard that fails on
  /// every record is then retried until that is spent (for ever when its group's give-ups are
  /// further apart than `period`), and a `shutdown()` meanwhile reports it `stopped`.
  bool restart_groups = false;
  /// Whether every shard is finite: the runtime then ends by itself once all shards have ended.
  bool finite = false;
  /// The checkpoint sink; when invalid, the runtime creates one over a `memory_checkpoint_store`.
  caf::actor sink;
  /// How long a shard group may take to start (longer than its shard's start timeout).
  std::chrono::milliseconds start_timeout{120'000};
  /// Where the runtime logs (failures of groups and of the root; a group's own `report` wins when
  /// set). Empty: `stderr_log("shardflow")`.
  log_sink log;
};

/// How one shard's life ended (or that it has not yet).
struct shard_result {
  shard_id id;
  shard_outcome outcome = shard_outcome::running;
  /// gave_up: why (the group's exit reason); empty otherwise.
  std::string reason;
};

/// What `await` returns.
struct runtime_outcome {
  /// False: await timed out and the runtime is still running (`shards` is a snapshot).
  bool ended = false;
  /// Every shard started on the runtime, in start order.
  std::vector<shard_result> shards;
  /// The runtime's exit reason: none or `user_shutdown` without context after a clean end, and
  /// `user_shutdown` too after an end in which a shard gave up (a finite runtime without
  /// `restart_groups` ends so): the verdict is `clean()` and each shard's `outcome`, not this.
  caf::error reason;

  /// Returns whether the runtime ended, with a clean exit reason, and every shard ended or stopped.
  bool clean() const;

  /// Returns `ended` (so `while (!rt.await(d))` polls).
  explicit operator bool() const noexcept {
    return ended;
  }
};

// -- the front actor's atoms ---------------------------------------------------------------------

using seal_atom = caf::atom_constant<caf::atom("seal")>;
using await_atom = caf::atom_constant<caf::atom("await")>;

/// What the registry shares between the front actor and the facade (internal).
struct runtime_registry;

/// Spawns a runtime's front actor (root supervisor, sink and registry inside) for a host that is an
/// actor and does not want the blocking facade; see the file comment for its protocol.
caf::expected<caf::actor> spawn_runtime(caf::actor_system& sys, runtime_config cfg);

// -- the blocking facade -------------------------------------------------------------------------

/// Shards under one supervision tree in a host's actor system; see the file comment.
class runtime {
public:
  /// Starts a runtime in `sys` (whose config went through shardflow::configure).
  static caf::expected<std::unique_ptr<runtime>> start(caf::actor_system& sys, runtime_config cfg);

  /// Shuts the runtime down (as `shutdown`) and ends its front actor and its sink (also a sink the
  /// host passed in `runtime_config::sink`).
  ~runtime();

  /// Starts the group of one shard; `cfg.sink` defaults to the runtime's sink. Without
  /// `cfg.source`, the shard is fed by `push` (a replay buffer keeps what is not checkpointed).
  caf::error start_shard(shard_group_config cfg);

  /// Hands `batch` to the shard (push mode); blocks while the shard's replay buffer is over its
  /// limit. Records must come in increasing sequence-number order. An error with
  /// errc::restarting means the shard was restarting and the batch was not taken: push it again.
  /// A push that waited when its shard's group then gave up is answered restarting too (its feeder
  /// cannot tell a give-up from a restart); the push again is then answered with the final word,
  /// errc::shard_ended, so a host that retries on restarting learns it at its next push.
  caf::error push(const shard_id& id, record_batch batch);

  /// Tells a pushed shard that no more records come: it flushes, checkpoints its end and finishes.
  caf::error end(const shard_id& id);

  /// Returns the counters of the shard's current incarnation.
  caf::expected<shard_stats> stats(const shard_id& id);

  /// Stops one shard gracefully (final flush and checkpoint) and forgets its group; its outcome
  /// (stopped) stays in `await`'s result.
  caf::error stop_shard(const shard_id& id);

  /// Finite runtimes: says that every shard has been started, so the runtime may end once they all
  /// have ended (before, a shard that ends early cannot end the runtime while others are still
  /// being added). `await` calls it.
  void seal();

  /// Blocks until the runtime has ended by itself (finite shards, or a failure) or `timeout`
  /// passed; seals the runtime first. Returns `ended == false` and a snapshot on timeout.
  runtime_outcome await(caf::timespan timeout);

  /// Returns the runtime's exit reason once `await` or `shutdown` saw it end (none before).
  const caf::error& exit_reason() const noexcept {
    return ended_;
  }

  /// Same as `await(0).clean()` once ended: false while the runtime runs.
  bool ended_cleanly() const;

  /// Stops every shard gracefully, newest first, and ends the runtime. Idempotent. Returns none
  /// when the runtime ended cleanly (now or before), else its exit reason.
  caf::error shutdown();

  /// Returns the meters of shard `id` (alive as long as the caller holds them), or null when the
  /// runtime never started it.
  std::shared_ptr<const shard_meters> meters(const shard_id& id) const;

  /// Returns the ids of every shard started on this runtime, in start order.
  std::vector<shard_id> shards() const;

  /// Returns the front actor (see the file comment), for hosts that are actors.
  const caf::actor& front() const noexcept {
    return front_;
  }

  /// Returns the root supervisor, e.g. to nest the runtime's tree under a host supervisor's monitor.
  const caf::actor& root() const noexcept {
    return root_;
  }

  /// Returns the checkpoint sink.
  const caf::actor& sink() const noexcept {
    return sink_;
  }

private:
  runtime(caf::actor_system& sys, caf::actor front, std::shared_ptr<runtime_registry> reg);

  template <class T, class... Ts>
  caf::expected<T> call(Ts&&... xs);

  caf::scoped_actor self_;
  /// The feeder of each pushed shard, as the front actor last named it, and the shard's meters (a
  /// shard that ended or was stopped takes its pushes through the front actor, which refuses them).
  struct pushed_shard {
    caf::actor feeder;
    std::shared_ptr<const shard_meters> meters;
  };
  std::map<shard_id, pushed_shard> feeders_;
  caf::actor front_;
  caf::actor root_;
  caf::actor sink_;
  std::shared_ptr<runtime_registry> reg_;
  caf::error ended_;
  bool finished_ = false;
};

} // namespace shardflow

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::shard_group_config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::runtime_outcome)
