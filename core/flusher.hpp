// core/flusher.hpp - the contract between a shard and its sink (erlmld's flusher behaviour).
//
// A flusher owns the current batch of records of one shard. It does not decide *when* to flush: the
// shard's batch processor does. It answers "did the record fit?" and, when asked to flush, hands back
// the tokens of the records that are now durable. The batch processor checkpoints the shard only at a
// record that is durable together with every record before it, so a token returned too early is the
// one way a flusher can lose data: return a token only once its record would survive a crash of this
// process (written and fsynced, acknowledged by the remote store, ...).
//
// Lifecycle: one flusher per shard incarnation, made by a `flusher_factory` from the shard id (and
// whatever configuration the factory captured):
//
//     factory(shard_id) --> { add | flush | heartbeat }* --> destroyed
//
// A restarted shard gets a new flusher and replays every record after its last checkpoint, so a
// flusher may see records again that an earlier incarnation already wrote (at-least-once).
//
// Threading: a flusher is owned by exactly one shard and called from that shard only, never
// concurrently: it needs no locks. Calls should return in bounded time; a flusher that blocks on I/O
// for long belongs on a shard spawned as a detached actor (see actors/shard.hpp) so that it does not
// stall the cooperative scheduler.
//
// Failure: a flusher reports `{error, Reason}` by throwing (any std::exception; `shardflow::error`
// with errc::flusher_failed is a good choice). The batch processor turns that into an error carrying
// the exception's text; the shard then exits and its supervisor restarts it from the last checkpoint.
// Contract violations are failures too and are reported with a clear message, never by hanging:
// returning a token twice or one never handed out, answering `full` on an empty batch, or leaving
// records outstanding after `flush(flush_mode::full)`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// Outcome of `flusher::add`, and what each one obliges the caller to do.
enum class add_result : std::uint8_t {
  /// The record joined the batch; its token comes back from a later `flush` or `heartbeat`, once the
  /// record is durable. The caller may not checkpoint at this record before then.
  added,
  /// The record was dropped on purpose and its token will never come back. The caller treats the
  /// record as done at once, so it can be passed by a checkpoint.
  ignored,
  /// The batch is full and the record was *not* taken. The caller must flush and offer the same record
  /// again with the same token. Answering `full` when nothing is outstanding is an error: such a record
  /// can never fit.
  full,
};

/// How much a flush must write.
enum class flush_mode : std::uint8_t {
  /// Write what the flusher considers ready; it may keep a remainder (e.g. writes still in flight).
  partial,
  /// Write everything outstanding: afterwards no token may be outstanding. Used when a shard stops and
  /// must checkpoint at its last record.
  full,
};

/// Returns "partial" or "full".
const char* to_string(flush_mode mode) noexcept;

/// Batches the records of one shard and reports which ones are durable.
class flusher {
public:
  virtual ~flusher();

  /// Offers record `x` with `token`; see `add_result` for the outcomes.
  /// @throws any std::exception on failure; the shard then fails.
  virtual add_result add(const stream_record& x, flush_token token) = 0;

  /// Writes the current batch and returns the tokens of the records that are now durable, in any
  /// order, each at most once over the flusher's life.
  /// @post With `flush_mode::full`, every token passed to `add` and not yet returned is in the result.
  /// @throws any std::exception on failure; the shard then fails.
  virtual std::vector<flush_token> flush(flush_mode mode) = 0;

  /// Called periodically, also when no records arrive. May return tokens of records that became
  /// durable since the last call; non-empty tokens count as a partial flush. It exists to break a
  /// near-deadlock on quiet streams: the batch processor waits for tokens before it can checkpoint,
  /// while a flusher that flushes only when its batch fills would wait for more records. A flusher
  /// that writes asynchronously returns its completions here.
  /// @throws any std::exception on failure; the shard then fails.
  virtual std::vector<flush_token> heartbeat() = 0;
};

/// Makes the flusher of one shard incarnation; user configuration is whatever the function captures.
using flusher_factory = std::function<std::unique_ptr<flusher>(const shard_id&)>;

} // namespace shardflow
