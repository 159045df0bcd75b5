// actors/runtime.hpp - the embedding API: shards under one supervision tree in a host's actor system.
//
// A host application that already has a `caf::actor_system` creates a runtime, starts shards
// (shard id, flusher factory, batch configuration, record source or push mode), feeds records,
// reads stats and shuts down gracefully:
//
//     caf::actor_system sys{cfg};                    // cfg: shardflow::configure(cfg) first
//     auto rt = shardflow::runtime::start(sys, {});  // root supervisor + in-memory checkpoints
//     shardflow::shard_group_config s;
//     s.shard.id = "orders-0";
//     s.shard.make_flusher = my_flusher_factory;
//     rt->start_shard(s);                            // no source: the host pushes
//     rt->push("orders-0", batch);                   // waits while the shard is behind
//     rt->stats("orders-0");
//     rt->shutdown();                                // every shard flushes and checkpoints
//
// The tree: a root supervisor (one_for_one) over one group per shard (rest_for_one over the shard's
// feeder and the shard; see actors/shard.hpp). A crashed shard is restarted by its group from its
// last durable checkpoint; its feeder replays what the checkpoint does not cover. A group that
// exceeds its restart intensity is restarted by the root, which counts against the root's
// intensity; beyond that the runtime stops.
//
// Threading: the member functions block the calling thread (they talk to the actors through a
// scoped actor) and must be called from host threads, never from inside an actor. One runtime may
// be used from one host thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>

#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/core/checkpoint_store.hpp>

namespace shardflow {

/// Configuration of a runtime's root supervisor.
struct runtime_config {
  /// Group restarts the root allows within `period` before it gives up.
  int intensity = 100;
  std::chrono::seconds period{10};
  /// Whether every shard is finite: the runtime then ends by itself once all shards have ended.
  bool finite = false;
  /// The checkpoint sink; when invalid, the runtime creates one over a `memory_checkpoint_store`.
  caf::actor sink;
  /// How long a shard group may take to start (longer than its shard's start timeout).
  std::chrono::milliseconds start_timeout{120'000};
};

/// Shards under one supervision tree in a host's actor system; see the file comment.
class runtime {
public:
  /// Starts a runtime in `sys` (whose config went through shardflow::configure).
  static caf::expected<std::unique_ptr<runtime>> start(caf::actor_system& sys, runtime_config cfg);

  ~runtime();

  /// Starts the group of one shard; `cfg.sink` defaults to the runtime's sink. Without
  /// `cfg.source`, the shard is fed by `push` (a replay buffer keeps what is not checkpointed).
  caf::error start_shard(shard_group_config cfg);

  /// Hands `batch` to the shard (push mode); blocks while the shard's replay buffer is over its
  /// limit. Records must come in increasing sequence-number order. An error with
  /// errc::restarting means the shard was restarting and the batch was not taken: push it again.
  caf::error push(const shard_id& id, record_batch batch);

  /// Tells a pushed shard that no more records come: it flushes, checkpoints its end and finishes.
  caf::error end(const shard_id& id);

  /// Returns the counters of the shard's current incarnation.
  caf::expected<shard_stats> stats(const shard_id& id);

  /// Stops one shard gracefully (final flush and checkpoint) and forgets it.
  caf::error stop_shard(const shard_id& id);

  /// Finite runtimes: says that every shard has been started, so the runtime may end once they all
  /// have ended (before, a shard that ends early cannot end the runtime while others are still
  /// being added). `await` calls it.
  void seal();

  /// Blocks until the runtime has ended by itself (finite shards) or `timeout` passed; returns
  /// whether it has ended (its exit reason is then `exit_reason()`). Seals the runtime first.
  bool await(caf::timespan timeout);

  /// Returns why the runtime ended: `user_shutdown` without context after a clean end (all finite
  /// shards done, or `shutdown`), anything else after a failure.
  const caf::error& exit_reason() const noexcept {
    return ended_;
  }

  /// Returns whether the runtime ended cleanly (see `exit_reason`).
  bool ended_cleanly() const;

  /// Stops every shard gracefully, newest first, and ends the runtime. Idempotent.
  caf::error shutdown();

  /// Returns the root supervisor, e.g. to nest the runtime's tree under a host supervisor's monitor.
  const caf::actor& root() const noexcept {
    return root_;
  }

  /// Returns the checkpoint sink.
  const caf::actor& sink() const noexcept {
    return sink_;
  }

private:
  runtime(caf::actor_system& sys, caf::actor root, caf::actor sink);

  caf::expected<caf::actor> member(const shard_id& id, const std::string& role);

  template <class T, class... Ts>
  caf::expected<T> call(const caf::actor& dst, Ts&&... xs);

  caf::scoped_actor self_;
  caf::actor root_;
  caf::actor sink_;
  caf::error ended_;
  bool finished_ = false;
  bool sealed_ = false;
};

} // namespace shardflow
