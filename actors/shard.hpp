// actors/shard.hpp - the shard actor: one flusher, one batch processor, checkpoints to a sink; and
// the per-shard supervision group that makes it restartable without losing a record.
//
// A shard incarnation lives like this:
//
//   spawned --(start_atom from its supervisor)--> load checkpoint from the sink (new generation)
//           --> make the flusher and the batch processor --> attach to the feeder at the checkpoint
//           --> answer ok (started) --> demand `credit` records (and `credit_bytes` bytes)
//   (heartbeat ticks run every `heartbeat_interval` from the start handshake on; one before the
//   checkpoint is loaded does nothing)
//
//   records   --> processor.process --> checkpoint? --> sink;  demand as many records again
//   tick(gen) --> processor.heartbeat --> checkpoint? --> sink;  watchdog check (it fires only
//                 when records are available and make no progress: see batch_processor)
//   idle      --> (from the feeder: the source has nothing now) processor.idle: a shard waiting
//                 for input is quiet, not stuck
//   end       --> processor.shutdown(terminate) --> final checkpoint, then the end marker (an
//                 empty checkpoint) --> both acked --> quit(normal)
//   stopped   --> (the source is at_end and stopped(): it stopped before its end, e.g. at a bad
//                 line) processor.shutdown(requested) --> final checkpoint, NO end marker --> acked
//                 --> quit(normal); outcome `stopped`, so a rerun resumes after that checkpoint
//   exit(user_shutdown) from the supervisor
//             --> processor.shutdown(requested) --> final checkpoint --> acked --> quit(shutdown)
//
// Checkpoints leave as `(save_atom, id, generation, checkpoint)` requests to the sink; at most one
// is in flight and a newer one supersedes one still waiting. A failed save is counted, logged and
// retried with doubling backoff, and is never reported as success; a save refused as stale (a
// newer incarnation owns the shard) ends this one. These decisions are core/checkpoint_outbox.hpp's
// (pure, tested without CAF); the actor carries out its actions. Each acknowledged checkpoint is
// passed to the feeder, which may then forget what it covers. Errors from the flusher, the
// processor's contract checks and the watchdog end the shard with a shardflow error that keeps its
// text; the supervisor restarts it, and the new incarnation resumes after the last acknowledged
// checkpoint (at-least-once: records flushed after that checkpoint are flushed again).
//
// Meters (`shard_config::meters`, core/shard_meters.hpp): each incarnation writes its generation on
// start (and counts a restart when an earlier incarnation of the same meters had started), the
// records it receives, each acknowledged checkpoint, and on finishing its outcome: `ended` when its
// last acknowledged checkpoint is the end marker, else `stopped`. A group that restarts the shard
// after stopping it (a feeder crash under rest_for_one) therefore shows `stopped` until the next
// incarnation has loaded its checkpoint and writes `running` again.
//
// Timers: the load and each save are requests without a CAF timeout; the shard's one timer (its
// heartbeat tick, or a wake-up at the earliest deadline when that comes first) fails a load or a
// save that is not answered within `checkpoint_timeout` exactly as a request timeout did (a load:
// the incarnation ends with sec::request_timeout; a save: counted, logged, retried) and ends a
// retry's backoff. An answer that comes after its save was overdue is ignored. CAF 0.17 never
// cancels a timer: each was a clock entry and a wake-up of CAF's clock thread.
//
// Threading: a shard runs on CAF's cooperative scheduler and must not block. A flusher that blocks
// on I/O (fsync, network round trips) should run on a detached shard (`shard_config::detached`): it
// gets a thread of its own, at the cost of a thread per shard, so use it for tens of shards, not
// thousands; for many shards prefer a flusher that writes asynchronously and returns tokens from
// `heartbeat`.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>

#include <shardflow/actors/feeder.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/flusher.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/core/restart_policy.hpp>
#include <shardflow/core/shard_meters.hpp>

namespace shardflow {

/// Configuration of one shard (never sent as a message; copied into each incarnation).
struct shard_config {
  /// The shard's name.
  shard_id id;
  /// Makes the flusher of each incarnation.
  flusher_factory make_flusher;
  /// Flush, checkpoint and watchdog intervals.
  batch_config batch;
  /// How often the shard calls its flusher's heartbeat (0: never).
  std::chrono::milliseconds heartbeat_interval{1000};
  /// Records the feeder may send before the shard has processed them.
  std::size_t credit = 10'000;
  /// Payload bytes (keys and data) the feeder may send before the shard has processed them; the
  /// feeder always sends at least one record, so a record larger than this still goes through.
  std::size_t credit_bytes = std::size_t{16} << 20;
  /// How long a checkpoint save may take before it counts as failed, and the checkpoint load at
  /// the start before the incarnation ends (0: no deadline).
  std::chrono::milliseconds checkpoint_timeout{30'000};
  /// First retry delay after a failed save; doubles up to `retry_max`.
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{10'000};
  /// Run the shard on a thread of its own (for flushers that block).
  bool detached = false;
  /// Where every incarnation writes its meters (core/shard_meters.hpp): generation and restarts on
  /// start, records received, each acknowledged checkpoint, and the outcome (`ended` once its end
  /// is checkpointed, `stopped` after a stop). Shared by all incarnations; null: none.
  std::shared_ptr<shard_meters> meters;
  /// Set (by the runtime) when a stop of this shard begins, before the stop reaches the shard
  /// through its supervisor: from then on the feeder sends nothing and the shard drops the record
  /// batches it has not added yet (not checkpointed: a rerun replays them), so at most the batch
  /// in progress is added after a stop. Shared by the feeder and every incarnation; null: none.
  halt_flag halt;
  /// Where the shard's log lines go (a failed checkpoint save and its retry); empty:
  /// `stderr_log("shardflow")` (core/log.hpp). A runtime passes its own sink.
  log_sink log;
};

/// Spawns one shard incarnation from its supervisor's start function.
caf::actor spawn_shard(caf::event_based_actor* sup, shard_config cfg, caf::actor feeder,
                       caf::actor sink);

/// Returns the default restart backoff of a shard (see `shard_group_config::backoff`).
inline backoff_spec default_shard_backoff() {
  backoff_spec result;
  result.min = std::chrono::milliseconds(100);
  result.max = std::chrono::seconds(1);
  result.random_factor = 0.2;
  result.reset_after = std::chrono::seconds(10); // a shard up for a whole period starts again fast
  return result;
}

/// Configuration of a per-shard group: feeder plus shard under a rest_for_one supervisor (child ids
/// `feeder_child_id` and `shard_child_id`).
struct shard_group_config {
  shard_config shard;
  /// Makes the record source of each feeder incarnation.
  source_factory source;
  feeder_config feeder;
  /// The checkpoint sink (actors/checkpoint_sink.hpp).
  caf::actor sink;
  /// Whether the input ends: then the shard is transient and significant, and the group shuts
  /// down once the shard has checkpointed its end; otherwise both are permanent.
  bool finite = false;
  /// Restarts of the shard allowed within `period` before the group gives up (and its parent sees
  /// the failure).
  int intensity = 10;
  std::chrono::seconds period{10};
  /// Backoff between restarts of the shard (and of the group after a feeder failure); by default
  /// `default_shard_backoff()`: 100 ms doubling to 1 s, with 20% jitter. The cap keeps the default
  /// intensity meaningful: 10 restarts wait at most 0.1 + 0.2 + 0.4 + 0.8 + 6 x 1 = 7.5 s (9 s with
  /// jitter), so a shard that always fails still gives up within the default 10 s period instead
  /// of being retried for ever. A larger
  /// `backoff.max` needs a longer `period` (at least intensity x 1.2 x max). `backoff_spec{}`
  /// restarts at once.
  backoff_spec backoff = default_shard_backoff();
  /// How long a shard may take for its final flush and checkpoint when stopped.
  std::chrono::milliseconds shutdown_timeout{5000};
  /// How long a starting shard may take to load its checkpoint and attach (a store that syncs to
  /// disk can be slow under load).
  std::chrono::milliseconds start_timeout{60'000};
  /// Where failures of the shard and its feeder are reported (default: `stderr_log("shardflow")`,
  /// at warning level).
  std::function<void(const std::string&)> report;
};

/// The child id of the feeder inside a shard group (`which_children` of the group supervisor lists
/// it first; start it before the shard).
inline constexpr char feeder_child_id[] = "feeder";

/// The child id of the shard actor inside a shard group (after the feeder: under rest_for_one a
/// feeder restart restarts the shard, a shard restart leaves the feeder running).
inline constexpr char shard_child_id[] = "shard";

/// Returns `text` (a shard group's report or exit reason about shard `id`) without the words that
/// repeat what the line already says: the shard's name ("shard ID: "), the group's own child
/// ("child shard: "), "shardflow: " and "restart limit reached: " inside, e.g. "more than 10 restarts
/// in 10 s (last: flusher_failed: the flusher failed in flush(full): ...)".
std::string tidy_reason(std::string text, const shard_id& id);

/// Returns the log line of report `what` of shard `id`'s group: the shard named once, first
/// ("ID: ", as core/log.hpp's split_shard reads it), each code once, e.g. "shard-00001: failed
/// (flusher_failed): the flusher failed in flush(full): ...", "shard-00001: its feeder failed
/// (io_failed): ...", "shard-00001: gave up: more than 10 restarts in 10 s (last: ...)". The
/// default report and the runtime's use it.
std::string group_report_line(const shard_id& id, const std::string& what);

/// Returns the child spec of the group of one shard, id = the shard id; its children are
/// `feeder_child_id` and `shard_child_id`, in that order. Under a parent supervisor
/// with auto_shutdown all_significant, a finite group is significant and transient.
child_spec shard_group(shard_group_config cfg);

} // namespace shardflow
