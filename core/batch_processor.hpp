// core/batch_processor.hpp - decides when a shard flushes and where it checkpoints.
//
// The C++ form of erlmld's `erlmld_batch_processor`. It owns one flusher, offers it every record with
// a token, flushes when the flusher is full or the flush interval has elapsed, and returns a
// checkpoint when the checkpoint interval has elapsed and the checkpoint would move. A checkpoint
// lands only on a record that is durable together with every record before it (see
// core/checkpoint_tracker.hpp for the picture and the algorithm).
//
// Lifecycle and threading: a plain class with no clock and no CAF. The owner (a shard actor, the MLD
// adapter, a benchmark loop) reads the clock once per call and passes it in, calls it from one thread
// only, and persists every checkpoint it returns. Once a call throws, the processor is failed and
// every later call throws errc::processor_stopped; the owner should end the shard, whose replacement
// resumes from the last persisted checkpoint.
//
//     process(batch, now) ----> offer each record:  added   -> tracked, token comes back later
//                                                  ignored -> done at once
//                                                  full    -> flush(partial), offer again;
//                                                             full again -> flush(full), offer again;
//                                                             full on an empty batch -> error
//                               end of batch: flush(partial) if flush_interval elapsed
//                               -> checkpoint if checkpoint_interval elapsed and it would move
//     heartbeat(now) ---------> flusher.heartbeat(); tokens count as a flush
//                               -> flush if flush_interval elapsed -> checkpoint as above
//     shutdown(terminate) ----> flush(full) -> checkpoint at the last record, or an empty checkpoint
//     shutdown(requested) ----> flush(full) -> checkpoint at the last durable record if it moves
//     shutdown(zombie) -------> nothing (the lease is gone; another worker owns the shard)
//
// Deliberate differences from erlmld, each for speed or for safety:
// - It takes a batch of records per call and the clock once per batch; the flush interval is checked
//   at the end of each batch rather than after every record, and the checkpoint decision is taken
//   once per call, after all of its flushes (a decision after a mid-batch flush would be superseded by
//   the one at the end of the same call, with nothing sent in between).
// - Heartbeats also apply the flush interval, so a quiet shard flushes and checkpoints on time.
// - `shutdown_reason::requested` (graceful stop): flush fully, then checkpoint at the last durable
//   record. erlmld treats it as `zombie`; the KCL allows a checkpoint there.
// - An ignored record counts as done at once and takes a token position of its own, so a run of
//   ignored records does not hold the checkpoint back (erlmld numbers only added records, and never
//   checkpoints at an ignored one).
// - The flusher is offered runs of records (`flusher::add_run`, one virtual call per run instead of
//   one per record), and tokens that come back in order complete the tracker's prefix in one pass.
// - Contract violations are errors with clear messages instead of crashes or hangs: a token returned
//   twice or never issued, `full` on an empty batch, records left after `flush(full)`, and any flusher
//   exception.
// - Tracking is O(1) amortised per token with memory bounded by the out-of-order window, instead of
//   a balanced tree of every token since the last checkpoint; tokens are counters, and the processor
//   shares each `record_batch` instead of copying a sequence number per record.
// - The watchdog is a question (`watchdog_expired(now)`), not a timer: the owner asks it on its
//   ticks and ends the shard with errc::watchdog_timeout. It measures a shard that is stuck, not
//   one that is quiet: progress is a `process` call (records or empty batches from the source) or
//   tokens coming back (records made durable); the owner's own heartbeats are not progress. After
//   `idle(now)` (the source has nothing now) the shard waits for input, which never expires while
//   the flusher holds no record; records it holds that make no progress for the timeout do.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <shardflow/core/checkpoint_tracker.hpp>
#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// Tunables of a batch processor (erlmld's batch processor options), with sane defaults.
struct batch_config {
  /// Flush at the end of a batch when this much time has passed since the last flush.
  std::chrono::milliseconds flush_interval{1000};

  /// Checkpoint at most this often; 0 checkpoints after every call that moves the checkpoint.
  std::chrono::milliseconds checkpoint_interval{5000};

  /// After this long without progress while records are available (see `watchdog_expired`),
  /// `watchdog_expired` turns true; 0 disables it.
  std::chrono::milliseconds watchdog_timeout{0};

  /// Allow checkpoints at user records inside a KPL aggregate (erlmld's
  /// `enable_subsequence_checkpoints`).
  bool enable_subsequence_checkpoints = false;
};

/// Why a shard stops.
enum class shutdown_reason : std::uint8_t {
  /// The shard ended (closed by resharding, or the end of finite input): flush everything and
  /// checkpoint at its last record.
  terminate,
  /// The lease was lost: another worker owns the shard now. No flush, no checkpoint.
  zombie,
  /// A graceful stop was asked for: flush everything and checkpoint at the last durable record.
  requested,
};

/// Returns "terminate", "zombie" or "requested".
const char* to_string(shutdown_reason reason) noexcept;

/// Counters of one batch processor, for logs and metrics.
struct batch_stats {
  /// Records offered to the flusher (each counted once, however often `full` made us offer it again).
  std::uint64_t records = 0;
  /// Records the flusher ignored.
  std::uint64_t ignored = 0;
  /// Tokens the flusher returned (records made durable).
  std::uint64_t flushed = 0;
  /// Calls to `flusher::flush`.
  std::uint64_t flushes = 0;
  /// Heartbeats that returned tokens (counted as partial flushes).
  std::uint64_t heartbeat_flushes = 0;
  /// Checkpoints returned.
  std::uint64_t checkpoints = 0;
  /// Records added whose token has not come back.
  std::uint64_t outstanding = 0;
  /// Positions the checkpoint tracker holds (its memory, in entries).
  std::uint64_t window = 0;
  /// Record batches kept alive because a checkpoint may still land in them.
  std::uint64_t batches_held = 0;
  /// The last checkpoint returned, if any.
  std::optional<sequence_number> last_checkpoint;
};

/// Offers records to one flusher and decides flushes and checkpoints; see the file comment.
class batch_processor {
public:
  /// The clock whose time points callers pass in (CAF's actor clock uses the same one).
  using clock = std::chrono::steady_clock;

  /// A time point of `clock`.
  using time_point = clock::time_point;

  /// Creates a processor for shard `id` that owns `f`; `now` starts the intervals and the watchdog.
  batch_processor(shard_id id, std::unique_ptr<flusher> f, batch_config cfg, time_point now);

  batch_processor(const batch_processor&) = delete;
  batch_processor& operator=(const batch_processor&) = delete;

  /// Offers every record of `batch` in order, flushes as needed, and returns a checkpoint to persist
  /// if one is due. An empty batch is valid and counts as activity for the watchdog. The processor
  /// shares the batch (no copy) until a checkpoint has moved past its records.
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> process(const record_batch& batch, time_point now);

  /// Calls the flusher's heartbeat (its tokens count as a flush), flushes if the flush interval has
  /// elapsed, and returns a checkpoint if one is due.
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> heartbeat(time_point now);

  /// Flushes now with `mode` and returns a checkpoint if one is due.
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> flush(flush_mode mode, time_point now);

  /// Makes what was added durable (a partial flush, when records are outstanding) and returns a
  /// checkpoint at once if it moves, whatever the checkpoint interval says. For an owner that must
  /// keep records until they are checkpointed and has run out of room for them (a push buffer at
  /// its limit: its producer waits).
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> checkpoint_now(time_point now);
  /// Stops the processor for `reason` and returns the final checkpoint to persist, if any: for
  /// `terminate` always one (empty when nothing moved), for `requested` one if it moves, for `zombie`
  /// none. Every later call throws errc::processor_stopped.
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> shutdown(shutdown_reason reason, time_point now);

  /// Says that the source has nothing now (the shard caught up with its input): until records
  /// come again, time spent waiting does not count for the watchdog while no record is held.
  void idle(time_point now) noexcept;

  /// Returns when the intervals alone next make `tick` do something: the end of the flush interval
  /// while records are outstanding, of the checkpoint interval while a checkpoint would move
  /// (whichever is first); empty when neither, or once stopped. An owner whose input is quiet
  /// calls `tick` then, so its last records are flushed and checkpointed on time instead of at its
  /// next heartbeat.
  std::optional<time_point> next_due();

  /// Applies the intervals as `heartbeat` does, without calling the flusher's heartbeat: flushes
  /// (partial) if records are outstanding and the flush interval has elapsed, and returns a
  /// checkpoint if one is due. Not activity for the watchdog.
  /// @throws shardflow::error; the processor is failed afterwards.
  std::optional<checkpoint> tick(time_point now);

  /// Returns whether the watchdog timeout has passed without progress (a `process` call or tokens
  /// back) while the shard had work: always, unless it is `idle` with no record held.
  bool watchdog_expired(time_point now) const noexcept;

  /// Returns the counters.
  batch_stats stats() const;

  /// Returns the shard this processor serves.
  const shard_id& id() const noexcept {
    return id_;
  }

  /// Returns the configuration.
  const batch_config& config() const noexcept {
    return cfg_;
  }

private:
  template <class F>
  auto guarded(const char* operation, F&& body);

  // After the flusher answered `full` for `x`: flushes and offers it again (see the diagram).
  add_result add_after_full(const stream_record& x, flush_token token, time_point now);
  void flush_now(flush_mode mode, time_point now);
  void note_durable(const std::vector<flush_token>& tokens, time_point now);
  std::optional<checkpoint> checkpoint_if_due(time_point now, bool forced);

  shard_id id_;
  std::unique_ptr<flusher> flusher_;
  batch_config cfg_;
  checkpoint_tracker tracker_;
  time_point last_flush_;
  time_point last_checkpoint_;
  time_point last_activity_; // the last progress (watchdog)
  bool idle_ = false;        // the source had nothing at the last look (watchdog)
  batch_stats stats_;
  std::string stopped_; // why the processor no longer accepts calls; empty while running
};

} // namespace shardflow
