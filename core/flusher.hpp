// core/flusher.hpp - the contract between a shard and its sink (erlmld's flusher behaviour).
//
// A flusher owns the current batch of records of one shard. It does not decide *when* to flush: the
// shard's batch processor does. It answers "did the record fit?" and, when asked to flush, hands
// back the tokens of the records that are now durable. The batch processor checkpoints the shard
// only at a record that is durable together with every record before it, so a token returned too
// early is the one way a flusher can lose data: return a token only once its record would survive a
// crash of this process (written and fsynced, acknowledged by the remote store, ...).
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
// concurrently: it needs no locks, and each call happens after the previous one returned (the
// actor's mailbox orders them). It is NOT always called from the same OS thread: a shard on CAF's
// cooperative scheduler may run each call (and the factory, and the destructor) on a different
// worker thread, so a flusher must not keep thread-local state or use a client that is tied to the
// thread that made it. Only a detached shard (`shard_config::detached`, actors/shard.hpp) keeps one
// thread for its whole life; the MLD worker (kcl/) calls from its session's thread. Calls should
// return in bounded time; a flusher that blocks on I/O for long belongs on a detached shard so that
// it does not stall the cooperative scheduler, or writes asynchronously and returns its completions
// from `heartbeat` (examples/async_flusher.cpp).
//
// Records: `add` receives a reference to a record that stays alive, unchanged, until the record's
// token has come back from `flush` or `heartbeat` (the batch processor shares the record's batch
// until a checkpoint has passed the record, and a checkpoint never passes a record whose token is
// still out), so a flusher may keep a pointer or a `std::string_view` into an added record instead
// of copying it. It may not keep one past that point, nor to a record it answered `ignored` or
// `full` (those are live during `add` only), and it may not touch kept references in its
// destructor: the processor releases its batches before it destroys the flusher. Copy what you need
// longer.
//
// Edge calls, all legal: `heartbeat` before any `add`, and `flush` (partial or full) with nothing
// outstanding (the shard flushes fully on every stop, also when idle). With nothing outstanding
// they must return no tokens (every token already came back) and should not write anything.
//
// Failure: a flusher reports `{error, Reason}` by throwing (any std::exception). The batch
// processor turns that into errc::flusher_failed carrying the exception's text ("the flusher
// failed in flush(full): TEXT"; a shardflow::error's own code, e.g. io_failed, is not kept: put
// what matters in the text; an error thrown by a flusher factory keeps its code), and never calls
// that flusher again (every later call of the processor throws errc::processor_stopped without
// reaching it); the shard then exits and its supervisor restarts it from the last checkpoint with a
// new flusher.
// Contract violations are failures too and are reported with a clear message, never by hanging:
// returning a token twice or one never handed out (or one of an ignored record), answering `full`
// on an empty batch, or leaving records outstanding after `flush(flush_mode::full)`.
//
// Destruction: the destructor runs once the shard is done with the flusher, after a clean stop
// (a `flush(full)` came first), after a throw, after a contract violation, and after a lost lease
// (`shutdown_reason::zombie`: no flush at all, another worker owns the shard now). It must not
// throw and should return in bounded time (join a worker thread only after telling it to stop). It
// may release resources (close files, join threads), but it should not write records: nothing it
// writes can be checkpointed (no token comes back from a destructor), the next incarnation replays
// those records anyway, and after a lost lease its writes would land beside the new owner's.
// Records it still holds are dropped, not lost: they are after the last checkpoint.
//
// The factory: runs on the shard's thread when an incarnation starts (its checkpoint loaded),
// before its first record. It may throw (the disk is gone, a connection is refused) or return null
// (the processor treats that as errc::flusher_failed); that incarnation then fails to start, with
// the exception's text. At a shard's first start this is a start failure and nothing is retried:
// the group does not come up and `runtime::start_shard` returns errc::start_failed naming the text.
// At a restart, the group's supervisor counts the failed start against its intensity and tries
// again (calling the factory again), so a factory that keeps failing makes the group give up
// (errc::restart_limit_reached), which its parent sees. In the MLD worker the session ends with a
// fatal error. The factory is called once per incarnation, from different threads over time and
// from several shards at once: what it captures must be safe to share (or copied per call).
//
// Conformance: flushers/conformance.hpp checks an implementation against this contract in one line
// (`require_flusher_contract(factory)`); run it in your tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// Outcome of `flusher::add`, and what each one obliges the caller to do.
enum class add_result : std::uint8_t {
  /// The record joined the batch; its token comes back from a later `flush` or `heartbeat`, once
  /// the record is durable. The caller may not checkpoint at this record before then.
  added,
  /// The record was dropped on purpose and its token will never come back. The caller treats the
  /// record as done at once, so it can be passed by a checkpoint.
  ignored,
  /// The batch is full and the record was *not* taken. The caller must flush and offer the same
  /// record again with the same token. Answering `full` when nothing is outstanding is an error:
  /// such a record can never fit.
  full,
};

/// How much a flush must write.
enum class flush_mode : std::uint8_t {
  /// Write what the flusher considers ready; it may keep a remainder (e.g. writes still in flight).
  partial,
  /// Write everything outstanding: afterwards no token may be outstanding. Used when a shard stops
  /// and must checkpoint at its last record.
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

  /// Offers the records `xs[0]`, ..., `xs[n - 1]` in order with the tokens `first`, `first + 1`,
  /// ...: the same as calling `add` for each until one is not `added`. Returns how many were added
  /// in a row (k <= n); when k < n, record k was answered `stop` (`ignored` or `full`, meaning what
  /// they mean for `add`) and the records after it were not offered. The batch processor calls
  /// this once per run of records instead of `add` per record; the default calls `add` for each.
  /// Override it where a run can be taken at once (null_flusher appends its tokens): that saves a
  /// virtual call and a result per record. A decorator does not forward it unless it says so (its
  /// `add` would be bypassed), see core/flusher_decorator.hpp. @throws as `add`.
  virtual std::size_t add_run(const stream_record* xs, std::size_t n, flush_token first,
                              add_result& stop);

  /// Writes the current batch and returns the tokens of the records that are now durable, in any
  /// order, each at most once over the flusher's life. @post With `flush_mode::full`, every token
  /// passed to `add` and not yet returned is in the result. @throws any std::exception on failure;
  /// the shard then fails.
  virtual std::vector<flush_token> flush(flush_mode mode) = 0;

  /// Called periodically, also when no records arrive. May return tokens of records that became
  /// durable since the last call; non-empty tokens count as a partial flush. It exists to break a
  /// near-deadlock on quiet streams: the batch processor waits for tokens before it can checkpoint,
  /// while a flusher that flushes only when its batch fills would wait for more records. A flusher
  /// that writes asynchronously returns its completions here.
  /// @throws any std::exception on failure; the shard then fails.
  virtual std::vector<flush_token> heartbeat() = 0;
};

/// Makes the flusher of one shard incarnation; user configuration is whatever the function
/// captures.
using flusher_factory = std::function<std::unique_ptr<flusher>(const shard_id&)>;

} // namespace shardflow
