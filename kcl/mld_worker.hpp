// kcl/mld_worker.hpp - the record processor a KCL MultiLangDaemon runs for one shard.
//
// The worker reads the daemon's actions one line at a time and answers each with exactly one status,
// after any checkpoint exchanges (request, then wait for the reply). It runs one batch processor
// (core/batch_processor.hpp) per shard lease:
//
//   initialize         detect the protocol generation (v2 fields iff `sequenceNumber` is present),
//                      make the flusher and the processor; status
//   processRecords     heartbeat; decode records (base64; KPL aggregates unpacked, each user record
//                      keeping its carrier's sequence and sub-sequence numbers); process; checkpoint
//                      the processor's decision, if any; status
//   shardEnded, shutdown TERMINATE / SHARD_END
//                      flush fully, checkpoint with a null sequence number (retried until it works);
//                      status
//   shutdownRequested  flush fully, checkpoint at the last durable record; status
//   leaseLost, shutdown ZOMBIE / LEASE_LOST
//                      no flush, no checkpoint; status
//   any other action   status (forward compatible)
//   no action          (missing, null or not a string; or a line that is not JSON and names none)
//                      nothing to answer: ignored and counted; logged the first time for each kind
//                      of problem, then the 10th, 100th, ... time
//
// A line whose action is recognised gets its status, or the session fails (run() returns 1: the
// daemon restarts the lease from its last checkpoint): never a silent drop that leaves the daemon
// waiting, and never a status or a shard-end checkpoint that would cover records not processed.
// The session fails on
//   - a line that names an action but cannot be decoded (not JSON, invalid UTF-8, nesting deeper
//     than 1024, processRecords without a records array; see mld_protocol.hpp), or is longer than
//     `fd_line_io_config::max_line_bytes`;
//   - processRecords before initialize, after shutdownRequested or after the lease ended; a second
//     initialize; shardEnded / shutdown TERMINATE before initialize or after the lease ended;
//   - anything but the matching reply while a checkpoint reply is awaited (v2: the same
//     `sequenceNumber` and `subSequenceNumber`, v1: the same `checkpoint`), and the end of input
//     then (the checkpoint's outcome is unknown);
//   - a record without a usable position (not an object, no numeric sequenceNumber, a
//     subSequenceNumber that is not a long >= 0), unless `dead_letter_dir` is set: then it goes to
//     the dead-letter file instead of the batch.
//
// Checkpoint replies: ThrottlingException and KinesisClientLibDependencyException are retried with
// doubling backoff (at most `checkpoint_retries` times during processRecords, without limit at shard
// end); ShutdownException means the lease is gone: never checkpoint again in this session;
// InvalidStateException, IllegalArgumentException and anything else are logged and not retried
// (`"error":""` is no error; a non-string error is its JSON text). After a ShutdownException the
// records of later batches are still processed, never checkpointed.
// Records whose data is not valid base64 are poison: logged, counted, given to no flusher, and treated
// as done so they cannot hold checkpoints back (with `dead_letter_dir`, appended there and synced
// first). A corrupt aggregate goes to the flusher as one opaque record. A flusher failure is fatal:
// the worker stops at once (non-zero exit), the daemon then restarts its shards and the records
// after the last checkpoint come again.
//
// Records are decoded into vectors the worker keeps: a batch's records are refilled for a later
// batch only once no `record_batch` shares them any more (the processor, its tracker and any flusher
// that keeps a copy of the batch hold it), so in steady state no record costs a heap allocation. A
// flusher that keeps a pointer to a record past the batch's life sees other data, as it would see
// freed memory before.
//
// I/O goes through `line_io`, so tests drive the worker with transcripts and the CLI with stdin and
// stdout; time and sleeping are injected, so no test waits for a real backoff. Lines about the
// session go to one sink (`worker_config::log`: a level and a message); the library prints nothing
// else and installs no signal handlers. The host decides the signal policy: a worker that is the
// daemon's child ignores SIGPIPE (a vanished daemon is a failed write, not a kill), SIGINT and SIGTERM
// (the daemon ends a child by closing its stdin; a signal to the process group must not cut the
// protocol short), as `shardflow mld` does.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unordered_set>

#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/flusher_decorator.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/flushers/metered_flusher.hpp>
#include <shardflow/kcl/kpl.hpp>

namespace shardflow::mld {

/// Where the worker reads the daemon's lines and writes its own.
class line_io {
public:
  virtual ~line_io();

  /// Returns the next line without its line ending, or nothing at end of input. The view stays valid
  /// until the next call.
  virtual std::optional<std::string_view> read_line() = 0;

  /// Writes `line` and a newline, and flushes. Returns false when the other side is gone.
  virtual bool write_line(const std::string& line) = 0;

  /// Returns whether at least 64 readable bytes follow every line handed out (the JSON parser then
  /// reads the line in place instead of copying it).
  virtual bool padded() const noexcept {
    return false;
  }
};

/// Options of `fd_line_io`.
struct fd_line_io_config {
  /// The longest line accepted, in bytes without its line ending (the daemon sends a whole batch
  /// per line: 10,000 records or 10 MB of data are about 14 MB); a longer line fails `read_line`.
  std::size_t max_line_bytes = std::size_t{64} << 20;
  /// The kernel buffer asked for when the input is a pipe (F_SETPIPE_SZ, up to the system's
  /// pipe-max-size; 1 MiB by default): with the default 64 KiB, a daemon's batch of 160 KB crosses
  /// the pipe in three writes, each waking the worker. 0 leaves the pipe as it is.
  std::size_t pipe_bytes = std::size_t{1} << 20;
};

/// `line_io` over two file descriptors (stdin and stdout for the daemon's child process, or one
/// socket for a server's session). The read buffer grows with the data (a few KiB for short lines,
/// twice the longest line at most) and each byte is scanned for a newline once. Writes to a socket
/// never raise SIGPIPE (a vanished client fails `write_line`); writes to a pipe do unless the host
/// ignores it.
class fd_line_io final : public line_io {
public:
  fd_line_io(int in, int out, fd_line_io_config cfg = {});

  /// As `line_io::read_line`; a read error ends the input like EOF.
  /// @throws shardflow::error (errc::bad_input) on a line longer than `max_line_bytes`, naming it.
  std::optional<std::string_view> read_line() override;
  bool write_line(const std::string& line) override;
  bool padded() const noexcept override {
    return true;
  }

  /// Sets the longest line accepted from the next line on (a server allows short lines only until
  /// a session has introduced itself).
  void limit(std::size_t max_line_bytes) noexcept {
    cfg_.max_line_bytes = max_line_bytes;
  }

  /// Returns the size of the read buffer in bytes (for tests and memory accounting).
  std::size_t capacity() const noexcept {
    return cap_;
  }

  /// Whether the input has ended (EOF or a failed read): the peer sends nothing more.
  bool ended() const noexcept {
    return eof_;
  }

private:
  std::string_view take(std::size_t line_end, std::size_t next);
  [[noreturn]] void too_long(std::uint64_t number) const;
  void fill();

  int in_;
  int out_;
  fd_line_io_config cfg_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;
  std::size_t begin_ = 0;   // the first byte of the line not handed out yet
  std::size_t scanned_ = 0; // bytes before this hold no newline after `begin_`
  std::size_t end_ = 0;     // the bytes read
  std::uint64_t lines_ = 0; // lines handed out
  bool eof_ = false;
  bool not_socket_ = false; // `out` is a pipe or a file: written with write(2)
};

/// Gives the records of the current batch that are marked poison to nobody: the inner flusher never
/// sees them, and they count as done (ignored), so they cannot hold a checkpoint back.
class poison_filter final : public flusher_decorator {
public:
  /// Wraps `inner`; `poison` holds the addresses of the poison records of the batch being processed.
  poison_filter(std::unique_ptr<flusher> inner,
                const std::unordered_set<const stream_record*>* poison)
    : flusher_decorator(std::move(inner)), poison_(poison) {
  }

  add_result add(const stream_record& x, flush_token t) override {
    // Most batches have no poison: no hash lookup per record then.
    return !poison_->empty() && poison_->count(&x) > 0 ? add_result::ignored : inner().add(x, t);
  }

private:
  const std::unordered_set<const stream_record*>* poison_;
};

// The library's one log sink (core/log.hpp), named here too for the worker's and server's users.
using shardflow::log_level;
using shardflow::log_line;
using shardflow::log_sink;
using shardflow::stderr_log;

/// The kinds of checkpoint errors a shard's meter counts apart (the last: any other).
inline constexpr std::array<const char*, 5> checkpoint_error_kinds = {
  "ThrottlingException", "KinesisClientLibDependencyException", "ShutdownException",
  "InvalidStateException", "other"};

/// Returns the index in `checkpoint_error_kinds` of the daemon's error `name`.
std::size_t checkpoint_error_kind(std::string_view name);

/// Counters of one shard over every session that served it in this process, for a metrics
/// endpoint: written by the session's thread, read from any thread (relaxed atomics, each exact on
/// its own, not a consistent snapshot together).
struct shard_meter {
  /// What its flushers were given and made durable (a replay after a restart counts again).
  std::shared_ptr<flusher_meter> flushing = std::make_shared<flusher_meter>();
  /// Sessions that initialized for the shard (more than one: the daemon restarted its worker).
  std::atomic<std::uint64_t> sessions{0};
  /// Checkpoints the daemon confirmed.
  std::atomic<std::uint64_t> checkpoints{0};
  /// Checkpoint replies with an error, by `checkpoint_error_kinds`.
  std::array<std::atomic<std::uint64_t>, checkpoint_error_kinds.size()> checkpoint_errors{};
  /// The last processRecords' millisBehindLatest; -1 before any carried one.
  std::atomic<std::int64_t> millis_behind_latest{-1};
};

/// The meters of every shard a process serves, by shard id; thread-safe.
class worker_meters {
public:
  /// Returns the meter of `shard`, made on first use.
  std::shared_ptr<shard_meter> of(const std::string& shard);

  /// Returns every shard's meter, by shard id.
  std::vector<std::pair<std::string, std::shared_ptr<shard_meter>>> all() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<shard_meter>> shards_;
};

/// Options of the worker.
struct worker_config {
  /// Makes the flusher of the session's shard when the daemon sends initialize.
  flusher_factory make_flusher;
  batch_config batch;
  /// Retries of a throttled checkpoint while handling processRecords (shard end retries forever).
  unsigned checkpoint_retries = 5;
  /// First retry delay; doubles with jitter up to `checkpoint_backoff_max`.
  std::chrono::milliseconds checkpoint_backoff{1000};
  std::chrono::milliseconds checkpoint_backoff_max{30'000};
  /// Unpack erlmld's aggregate magics (00/01 89 9A C2) besides the standard one.
  bool erlmld_magics = true;
  /// When set, records that cannot be checkpointed (no usable sequence number) and poison records
  /// are appended here (`<shard>.ndjson`, one JSON line each, synced before they count as done);
  /// when empty, the former fail the session and the latter are only logged and counted.
  std::filesystem::path dead_letter_dir;
  /// Caps on unpacking KPL aggregates (an aggregate past them is delivered as one opaque record).
  kpl::unpack_limits kpl_limits;
  /// The worker refills the records of a batch like the last ones in place (their strings keep
  /// their buffers); a batch with more payload bytes than this is not kept for that, so that one
  /// large batch does not pin its memory for the rest of the session.
  std::size_t reuse_batch_bytes = std::size_t{16} << 20;
  /// Where the session's lines go, each prefixed with the shard once it is known (default:
  /// `stderr_log("shardflow mld")`).
  log_sink log;
  /// Called when initialize arrives, before the flusher is made (a server lifts its pre-handshake
  /// limits then).
  std::function<void()> on_initialize;
  /// When set, the session counts into its shard's meter there (the flusher is metered too).
  std::shared_ptr<worker_meters> meters;
  /// Injected for tests: how to wait, what time it is.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
};

/// Counters of one worker session.
struct worker_stats {
  std::uint64_t records = 0;    // records offered to the processor (user records counted)
  std::uint64_t poison = 0;     // undecodable records
  std::uint64_t aggregates = 0; // aggregates unpacked
  std::uint64_t corrupt_aggregates = 0;
  std::uint64_t checkpoints = 0; // checkpoints the daemon confirmed
  std::uint64_t checkpoint_errors = 0;
  std::uint64_t ignored_lines = 0;
  std::uint64_t dead_letters = 0; // records appended to the dead-letter file
};

/// Serves one daemon session; see the file comment.
class worker {
public:
  worker(line_io& io, worker_config cfg);
  ~worker();

  /// Serves the daemon until end of input. Returns 0 after a clean session, 1 after a fatal error
  /// (a flusher failure, a broken pipe, a protocol breach: see the file comment).
  int run();

  /// Returns the counters.
  const worker_stats& stats() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace shardflow::mld
