#include <shardflow/kcl/mld_worker.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/base64.hpp>
#include <shardflow/flushers/dead_letter_file.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/flushers/record_line.hpp>
#include <shardflow/flushers/write_all.hpp>
#include <shardflow/kcl/kpl.hpp>
#include <shardflow/kcl/mld_protocol.hpp>

namespace shardflow::mld {

line_io::~line_io() = default;

// -- fd_line_io ------------------------------------------------------------------------------------

namespace {

// The JSON parser reads up to this many bytes past a line's end (see line_io::padded).
constexpr std::size_t padding = 64;
// A read asks for at least this much room, and for as much as is pending (up to the max), so a short
// line costs a small buffer and a long one a few doubling reads.
constexpr std::size_t min_read = std::size_t{4} << 10;
constexpr std::size_t max_read = std::size_t{1} << 20;

} // namespace

fd_line_io::fd_line_io(int in, int out, fd_line_io_config cfg) : in_(in), out_(out), cfg_(cfg) {
#ifdef F_SETPIPE_SZ
  // Best effort: a socket, a file or a pipe above the system's limit keeps its buffer.
  if (cfg_.pipe_bytes > 0 && ::fcntl(in_, F_GETPIPE_SZ) > 0
      && static_cast<std::size_t>(::fcntl(in_, F_GETPIPE_SZ)) < cfg_.pipe_bytes)
    (void) ::fcntl(in_, F_SETPIPE_SZ, static_cast<int>(cfg_.pipe_bytes));
#endif
}

std::optional<std::string_view> fd_line_io::read_line() {
  for (;;) {
    if (scanned_ < end_) {
      if (auto* nl
          = static_cast<const char*>(std::memchr(buf_.get() + scanned_, '\n', end_ - scanned_))) {
        const auto at = static_cast<std::size_t>(nl - buf_.get());
        return take(at, at + 1);
      }
      scanned_ = end_;
    }
    if (end_ - begin_ > cfg_.max_line_bytes + 1) // + 1: the line may still end in "\r\n"
      too_long(lines_ + 1);
    if (eof_) {
      if (begin_ == end_)
        return std::nullopt;
      return take(end_, end_);
    }
    fill();
  }
}

// Hands out the line from `begin_` to `line_end` (without a trailing CR); the next starts at `next`.
std::string_view fd_line_io::take(std::size_t line_end, std::size_t next) {
  std::string_view line{buf_.get() + begin_, line_end - begin_};
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  if (line.size() > cfg_.max_line_bytes)
    too_long(lines_ + 1);
  ++lines_;
  begin_ = scanned_ = next;
  return line;
}

void fd_line_io::too_long(std::uint64_t number) const {
  throw error{errc::bad_input, fmt::format("input line {} is longer than {} bytes, the line limit "
                                           "(raise it with --max-line SIZE)",
                                           number, cfg_.max_line_bytes)};
}

// Reads more input after the pending line, moving that line to the front and growing the buffer
// first if it lacks room.
void fd_line_io::fill() {
  if (begin_ > 0) { // the lines handed out before are no longer needed
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    scanned_ -= begin_;
    begin_ = 0;
  }
  const auto room = std::clamp(end_, min_read, max_read);
  if (cap_ < end_ + room + padding) {
    const auto cap = std::max(cap_ * 2, end_ + room + padding);
    std::unique_ptr<char[]> bigger{new char[cap]}; // not zeroed: pages are touched as data comes
    if (end_ > 0)
      std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  ssize_t n;
  do {
    n = ::read(in_, buf_.get() + end_, cap_ - end_ - padding);
  } while (n < 0 && errno == EINTR);
  if (n > 0)
    end_ += static_cast<std::size_t>(n);
  else
    eof_ = true;
  std::memset(buf_.get() + end_, 0, padding); // what the parser may read past the last line
}

bool fd_line_io::write_line(const std::string& line) {
  const std::string out = line + "\n";
  if (!not_socket_) {
    // A socket (mld-server): MSG_NOSIGNAL, so that a client that vanished fails the write instead
    // of killing a host that did not ignore SIGPIPE.
    std::size_t done = 0;
    while (done < out.size()) {
      const auto n = ::send(out_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == ENOTSOCK && done == 0) {
        not_socket_ = true;
        break;
      }
      if (n <= 0)
        return false; // the daemon is gone
      done += static_cast<std::size_t>(n);
    }
    if (!not_socket_)
      return true;
  }
  return write_all(out_, out.data(), out.size()); // false on EPIPE: the daemon is gone
}

// -- the worker ------------------------------------------------------------------------------------

namespace {

// Stops the session: the flusher failed, the daemon is gone or broke the protocol.
struct session_end {
  int code;
};

enum class checkpoint_outcome : std::uint8_t { done, lease_gone, failed };

// Where the session stands in the daemon's conversation (initialize, then records and
// checkpoints, then one of the endings).
enum class phase : std::uint8_t {
  fresh,    // before initialize
  active,   // initialized: records are processed
  stopping, // after shutdownRequested: everything was flushed; only a lease end may follow
  ended,    // after leaseLost or a shard end
};

const char* where(phase p) {
  switch (p) {
    case phase::fresh:
      return "before initialize";
    case phase::active:
      return "after initialize";
    case phase::stopping:
      return "after shutdownRequested";
    default:
      return "after the lease ended";
  }
}

// Returns `position` ("null", "S" or "S/N") as the log shows it.
std::string position_text(const std::optional<std::string>& seq,
                          const std::optional<std::string>& sub) {
  if (!seq)
    return "null";
  return sub ? fmt::format("{}/{}", *seq, *sub) : *seq;
}

// One line of a dead-letter file: the shard, why, and the record (its JSON text when it is not
// what a record should be, else its position, key and raw base64 data).
std::string dead_letter_line(const std::string& shard, std::string_view reason,
                             const wire_record& w) {
  std::string out = "{\"shard\":";
  append_json_string(out, shard);
  out += ",\"reason\":";
  append_json_string(out, reason);
  if (!w.raw.empty())
    return out + ",\"record\":" + w.raw + "}";
  out += ",\"sequenceNumber\":";
  append_json_string(out, w.sequence_number);
  out += ",\"subSequenceNumber\":";
  out += w.sub_sequence_number ? std::to_string(*w.sub_sequence_number) : std::string{"null"};
  out += ",\"partitionKey\":";
  append_json_string(out, w.partition_key);
  out += ",\"data\":";
  if (w.data_null)
    out += "null";
  else
    append_json_string(out, w.data_base64);
  return out + "}";
}

// The dead letters of a session (in the file `shardflow run` would use for the shard): the lines of
// a batch are collected and then written and synced together, before the batch is processed (so
// before its records count as done).
class dead_letter_batch {
public:
  explicit dead_letter_batch(std::filesystem::path dir) : dir_(std::move(dir)) {
  }

  /// Adds `line` (one JSON object) to the lines of the batch.
  void add(const std::string& line) {
    pending_ += line;
    pending_ += '\n';
    ++count_;
  }

  /// Appends the lines of the batch to the file of `shard` and syncs it; returns how many.
  /// @throws shardflow::error (errc::io_failed), naming the file.
  std::size_t sync(const std::string& shard) {
    if (count_ == 0)
      return 0;
    if (!file_)
      file_.emplace(dir_, shard);
    file_->write(pending_);
    file_->sync();
    const auto n = count_;
    pending_.clear();
    count_ = 0;
    return n;
  }

private:
  std::filesystem::path dir_;
  std::string pending_;
  std::size_t count_ = 0;
  std::optional<dead_letter_file> file_;
};

} // namespace

std::size_t checkpoint_error_kind(std::string_view name) {
  for (std::size_t i = 0; i + 1 < checkpoint_error_kinds.size(); ++i)
    if (name == checkpoint_error_kinds[i])
      return i;
  return checkpoint_error_kinds.size() - 1;
}

std::shared_ptr<shard_meter> worker_meters::of(const std::string& shard) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& m = shards_[shard];
  if (!m)
    m = std::make_shared<shard_meter>();
  return m;
}

std::vector<std::pair<std::string, std::shared_ptr<shard_meter>>> worker_meters::all() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return {shards_.begin(), shards_.end()};
}

struct worker::impl {
  line_io& io;
  worker_config cfg;
  worker_stats stats;
  message_parser parser;
  std::unique_ptr<batch_processor> proc;           // set once initialized
  std::unordered_set<const stream_record*> poison; // of the batch being processed (poison_filter)
  std::string shard;
  bool v2 = true;
  phase at = phase::fresh;
  bool lease_gone = false; // after ShutdownException: never checkpoint again
  std::uint64_t lines = 0; // input lines read
  std::shared_ptr<shard_meter> meter; // set at initialize when cfg.meters is
  std::map<std::string, std::uint64_t> ignored_kinds; // ignored lines by problem (see ignore)
  std::optional<dead_letter_batch> dead_letters;
  std::mt19937_64 rng{std::random_device{}()};
  // Reused by decode: the indexes of the records that may be aggregates, their data, what they hold.
  std::vector<std::uint32_t> carriers;
  std::vector<std::string_view> views;
  std::vector<kpl::unpack_result> unpacked;
  std::vector<wire_record> spare_records; // the records' vector of the last processRecords line

  impl(line_io& i, worker_config c) : io(i), cfg(std::move(c)) {
    if (!cfg.sleep)
      cfg.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    if (!cfg.now)
      cfg.now = [] { return std::chrono::steady_clock::now(); };
    if (!cfg.log)
      cfg.log = stderr_log("shardflow mld");
    if (!cfg.dead_letter_dir.empty())
      dead_letters.emplace(cfg.dead_letter_dir);
  }

  void log(log_level level, const std::string& s) {
    cfg.log(level, shard.empty() ? s : fmt::format("{}: {}", shard, s));
  }

  void send(const std::string& line) {
    if (!io.write_line(line)) {
      log(log_level::error, "the daemon closed the connection");
      throw session_end{1};
    }
  }

  // Ends the session because the daemon broke the protocol or sent what cannot be decoded: the
  // non-zero exit makes the daemon restart the lease from its last checkpoint, where an answer would
  // acknowledge records that were not processed, or leave the daemon waiting for one forever.
  [[noreturn]] void breach(const std::string& what) {
    log(log_level::error,
        fmt::format("fatal: {}; ending the session (the daemon restarts the lease from its last "
                    "checkpoint)",
                    what));
    throw session_end{1};
  }

  std::optional<std::string_view> read() {
    try {
      return io.read_line();
    } catch (const error& e) {
      log(log_level::error, fmt::format("fatal: {}", e.what()));
      throw session_end{1};
    }
  }

  // Counts a line that names no action and logs it: the first of each kind of problem ("no
  // action", "not JSON", ...), then the 10th, the 100th, ..., so a peer that sends nothing else
  // cannot flood the log.
  void ignore(std::string_view line, const std::string& why) {
    ++stats.ignored_lines;
    auto kind = why.substr(0, why.find_first_of(":("));
    while (!kind.empty() && kind.back() == ' ')
      kind.pop_back();
    const auto n = ++ignored_kinds[kind];
    auto tens = n;
    while (tens % 10 == 0)
      tens /= 10;
    if (tens != 1)
      return;
    log(log_level::warning,
        fmt::format("ignoring input line {}, which is {}{}: {:.80}", lines, why,
                    n == 1 ? std::string{} : fmt::format(" ({} such lines so far)", n),
                    std::string{line}));
  }

  // Reads the next message, skipping blank lines and undecodable lines that name no action (a line
  // that names one fails the session); nothing at end of input.
  std::optional<message> next() {
    for (;;) {
      auto line = read();
      if (!line)
        return std::nullopt;
      ++lines;
      if (line->find_first_not_of(" \t\r") == std::string::npos)
        continue;
      message m;
      m.records = std::move(spare_records); // its capacity, for the records of this line
      if (auto parsed = parser.parse(*line, m, io.padded()); !parsed) {
        if (!m.action.empty())
          breach(fmt::format("input line {}: a {} message that cannot be decoded: {}", lines,
                             m.action, parsed.error()));
        ignore(*line, parsed.error());
        continue;
      }
      return m;
    }
  }

  // Reads the reply to the checkpoint request just sent for `seq`/`sub`: the next message must be
  // that reply, naming that position (the daemon answers every checkpoint request before it sends
  // anything else); anything else is a breach, and the
  // end of input leaves the checkpoint's outcome unknown (a failure too).
  message await_reply(const std::optional<std::string>& seq,
                      const std::optional<std::string>& sub) {
    auto reply = next();
    const auto asked = position_text(seq, sub);
    if (!reply) {
      log(
        log_level::error,
        fmt::format("fatal: end of input while waiting for the reply to the checkpoint at {}; its "
                    "outcome is unknown",
                    asked));
      throw session_end{1};
    }
    if (reply->what != message::kind::checkpoint)
      breach(fmt::format("a {} message came while the reply to the checkpoint at {} was awaited",
                         reply->action, asked));
    const bool echoes = v2 ? reply->sequence_number == seq && (!seq || reply->echo_sub == sub)
                           : reply->echo_checkpoint == seq;
    if (!echoes)
      breach(fmt::format("the checkpoint reply is for {}, but the request was for {}",
                         v2 ? position_text(reply->sequence_number, reply->echo_sub)
                            : reply->echo_checkpoint.value_or("null"),
                         asked));
    return std::move(*reply);
  }

  // Runs one checkpoint exchange (with retries). `unbounded` retries throttling forever (shard end).
  checkpoint_outcome checkpoint(const std::optional<sequence_number>& at, bool unbounded) {
    if (at && at->is_sub_record()) {
      // The daemon can only checkpoint whole aggregates that we unpacked ourselves: sending the
      // carrier's coordinates here would cover user records that are not durable yet.
      log(log_level::info,
          fmt::format("not checkpointing inside an aggregate ({}); waiting for its last record",
                      to_string(*at)));
      return checkpoint_outcome::failed;
    }
    std::optional<std::string> seq;
    std::optional<std::uint64_t> sub;
    if (at) {
      seq = at->base.to_string();
      sub = at->sub;
    }
    auto delay = cfg.checkpoint_backoff;
    const auto sub_text = seq && sub ? std::optional<std::string>{std::to_string(*sub)}
                                     : std::nullopt;
    for (unsigned attempt = 0;; ++attempt) {
      send(checkpoint_line(v2, seq, sub));
      const auto reply = await_reply(seq, sub_text);
      if (!reply.error) {
        ++stats.checkpoints;
        if (meter)
          meter->checkpoints.fetch_add(1, std::memory_order_relaxed);
        return checkpoint_outcome::done;
      }
      ++stats.checkpoint_errors;
      const auto& err = *reply.error;
      if (meter)
        meter->checkpoint_errors[checkpoint_error_kind(err)].fetch_add(1,
                                                                       std::memory_order_relaxed);
      if (err == "ShutdownException") {
        log(log_level::warning,
            "checkpoint refused with ShutdownException: the lease is gone; no more checkpoints");
        lease_gone = true;
        return checkpoint_outcome::lease_gone;
      }
      const bool retryable = err == "ThrottlingException"
                             || err == "KinesisClientLibDependencyException";
      if (!retryable) {
        log(log_level::warning,
            fmt::format("checkpoint at {} failed with {}; not retried", seq.value_or("null"), err));
        return checkpoint_outcome::failed;
      }
      if (!unbounded && attempt >= cfg.checkpoint_retries) {
        log(log_level::warning,
            fmt::format("checkpoint at {} failed with {} {} times; giving up on it",
                        seq.value_or("null"), err, attempt + 1));
        return checkpoint_outcome::failed;
      }
      std::uniform_real_distribution<double> jitter{0.5, 1.0};
      const auto wait = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng)));
      log(log_level::info, fmt::format("checkpoint at {} failed with {}; retry {} in {} ms",
                                       seq.value_or("null"), err, attempt + 1, wait.count()));
      cfg.sleep(wait);
      delay = std::min(delay * 2, cfg.checkpoint_backoff_max);
    }
  }

  template <class F>
  auto guarded(F&& f) {
    try {
      return f();
    } catch (const std::exception& e) { // a flusher factory may throw anything
      log(log_level::error, fmt::format("fatal: {}", e.what()));
      throw session_end{1};
    }
  }

  void on_initialize(const message& m) {
    if (at != phase::fresh)
      breach(fmt::format("initialize {}: the unflushed records of this session would be dropped",
                         where(at)));
    shard = m.shard_id;
    v2 = m.has_sequence_key;
    guarded([&] {
      if (cfg.on_initialize)
        cfg.on_initialize();
      auto made = cfg.make_flusher(shard);
      if (cfg.meters) {
        meter = cfg.meters->of(shard);
        meter->sessions.fetch_add(1, std::memory_order_relaxed);
        made = std::make_unique<metered_flusher>(std::move(made), meter->flushing);
      }
      proc = std::make_unique<batch_processor>(
        shard, std::make_unique<poison_filter>(std::move(made), &poison), cfg.batch, cfg.now());
    });
    at = phase::active;
    log(log_level::info, fmt::format("initialized at {} (protocol {})",
                                     m.sequence_number.value_or("null"), v2 ? "v2" : "v1"));
    send(status_line(m.action));
  }

  // The record vectors of the last batches, refilled once the batch processor holds no copy of
  // one (`use_count() == 1`; it keeps the batch of its last checkpoint, so there are two of each):
  // their records keep their strings' buffers, so a batch like the last ones decodes without a heap
  // allocation. `wire_pool` takes the daemon's records, `user_pool` what their aggregates hold.
  using record_vector = std::shared_ptr<std::vector<stream_record>>;
  std::array<record_vector, 2> wire_pool;
  std::array<record_vector, 2> user_pool;

  // Returns a vector of `pool` that no batch shares any more, or a new one in place of the oldest.
  static record_vector& refill(std::array<record_vector, 2>& pool) {
    for (auto& v : pool)
      if (v && v.use_count() == 1) {
        // use_count() reads relaxed: order the refill after whatever released the last copy.
        std::atomic_thread_fence(std::memory_order_acquire);
        return v;
      }
    std::swap(pool[0], pool[1]);
    pool[0] = std::make_shared<std::vector<stream_record>>();
    return pool[0];
  }

  // Sets `s` to `v`. A refilled record's string often has the size already (user records of one
  // size, keys of one length): then a copy in place, not the library's out-of-line assign.
  static void overwrite(std::string& s, std::string_view v) {
    if (s.size() == v.size() && !v.empty())
      std::memcpy(s.data(), v.data(), v.size());
    else
      s.assign(v.data(), v.size());
  }

  // Returns record `i` of `xs` (`i <= xs.size()`), appended if it is new, to be overwritten whole.
  static stream_record& slot(std::vector<stream_record>& xs, std::size_t i) {
    return i < xs.size() ? xs[i] : xs.emplace_back();
  }

  // Decodes the records of `m`; `poisoned` gets the indexes of those whose data is not base64.
  // Records that may carry an aggregate are unpacked together (their MD5s are computed side by
  // side), and each aggregate is replaced by its user records.
  record_batch decode(const message& m, std::vector<std::uint32_t>& poisoned) {
    auto& wire = refill(wire_pool);
    auto& xs = *wire;
    std::size_t n = 0;
    std::size_t wire_bytes = 0; // about the payload bytes: the base64 text is 4/3 of the data
    poisoned.clear();
    carriers.clear();
    for (std::size_t i = 0; i < m.records.size(); ++i) {
      const auto& w = m.records[i];
      auto& x = slot(xs, n);
      if (auto why = position_of(w, x.sequence); !why.empty()) {
        set_aside(i, w, why);
        continue;
      }
      ++n;
      wire_bytes += w.partition_key.size() + w.data_base64.size();
      overwrite(x.partition_key, w.partition_key);
      x.arrival_ms = w.arrival_ms;
      x.behind_ms = m.millis_behind_latest;
      x.attributes.reset();
      if (w.data_null || !base64::decode(w.data_base64, x.data)) {
        ++stats.poison;
        log(log_level::warning,
            fmt::format("poison record at {}: its data is not valid base64", w.sequence_number));
        if (dead_letters)
          dead_letters->add(dead_letter_line(shard, "its data is not valid base64", w));
        x.data.clear();
        poisoned.push_back(static_cast<std::uint32_t>(n - 1));
        continue;
      }
      if (kpl::may_be_aggregate(x.data, cfg.erlmld_magics))
        carriers.push_back(static_cast<std::uint32_t>(n - 1));
    }
    xs.resize(n);
    if (dead_letters)
      stats.dead_letters += guarded([&] { return dead_letters->sync(shard); });
    std::size_t user_bytes = 0;
    auto& records = carriers.empty() ? wire : unpack_aggregates(xs, poisoned, user_bytes);
    record_batch batch{records};
    stats.records += batch.size();
    // A big batch keeps its records, but the pool lets go of them (and makes new ones next time).
    if (user_bytes > cfg.reuse_batch_bytes)
      records.reset();
    if (wire_bytes > cfg.reuse_batch_bytes)
      wire.reset();
    return batch;
  }

  // Reads the position of `w` into `at`; returns why it is unusable (empty when it is usable).
  static std::string position_of(const wire_record& w, sequence_number& at) {
    if (!w.problem.empty())
      return std::string{w.problem};
    try {
      at.base = sequence_base::parse(w.sequence_number);
    } catch (const error& e) {
      return e.what();
    }
    if (!at.base.is_number())
      return fmt::format("its sequenceNumber {} is not a number", w.sequence_number);
    at.sub = w.sub_sequence_number;
    return {};
  }

  // A record without a usable position can never be checkpointed correctly (a checkpoint past it
  // would claim it done): it goes to the dead-letter file if there is one, else the session fails
  // before its batch is acknowledged.
  void set_aside(std::size_t index, const wire_record& w, const std::string& why) {
    if (!dead_letters)
      breach(fmt::format("record {} of the batch has no usable position: {} (with a dead-letter "
                         "directory, shardflow mld --dead-letter DIR, it would be set aside there)",
                         index, why));
    log(
      log_level::warning,
      fmt::format("record {} of the batch has no usable position ({}): set aside as a dead letter",
                  index, why));
    dead_letters->add(dead_letter_line(shard, why, w));
  }

  // Replaces every aggregate among `xs` (at the `carriers` indexes) by its user records, which keep
  // their carrier's sequence numbers, into `user_pool`; renumbers `poisoned` to match and adds the
  // payload bytes to `bytes`. The records that stay whole swap their strings' buffers with those of
  // the pool.
  record_vector& unpack_aggregates(std::vector<stream_record>& xs,
                                   std::vector<std::uint32_t>& poisoned, std::size_t& bytes) {
    views.clear();
    for (auto i : carriers)
      views.emplace_back(xs[i].data);
    kpl::unpack_all(views.data(), views.size(), cfg.erlmld_magics, unpacked, cfg.kpl_limits);
    auto& users_vector = refill(user_pool);
    auto& ys = *users_vector;
    std::size_t n = 0;
    std::size_t next_carrier = 0;
    std::size_t next_poison = 0;
    const auto keep_whole = [&](stream_record& x) {
      auto& y = slot(ys, n++);
      y.partition_key.swap(x.partition_key);
      y.data.swap(x.data);
      bytes += y.partition_key.size() + y.data.size();
      y.sequence = x.sequence;
      y.arrival_ms = x.arrival_ms;
      y.behind_ms = x.behind_ms;
      y.attributes = std::move(x.attributes);
    };
    for (std::size_t i = 0; i < xs.size(); ++i) {
      auto& x = xs[i];
      if (next_poison < poisoned.size() && poisoned[next_poison] == i)
        poisoned[next_poison++] = static_cast<std::uint32_t>(n);
      if (next_carrier == carriers.size() || carriers[next_carrier] != i) {
        keep_whole(x);
        continue;
      }
      const auto& u = unpacked[next_carrier++];
      if (u.what == kpl::unpack_result::kind::corrupt) {
        ++stats.corrupt_aggregates;
        log(log_level::warning,
            fmt::format("record at {} looks like an aggregate but {}; delivered as one record",
                        to_string(x.sequence), u.why));
      }
      if (u.what != kpl::unpack_result::kind::aggregate) {
        keep_whole(x);
        continue;
      }
      ++stats.aggregates;
      const auto users = static_cast<std::uint32_t>(u.records.size());
      for (std::uint32_t k = 0; k < users; ++k) {
        auto& y = slot(ys, n++);
        overwrite(y.partition_key, u.records[k].partition_key);
        overwrite(y.data, u.records[k].data);
        bytes += y.partition_key.size() + y.data.size();
        // The carrier's position, then the user record's place in it: a copy of a local whose
        // user_sub was just stored would load those bytes back before the store could forward
        // them (a stall of about a dozen cycles per user record, measured as most of this loop).
        y.sequence = x.sequence;
        y.sequence.user_sub = k;
        y.sequence.user_total = users;
        y.arrival_ms = x.arrival_ms;
        y.behind_ms = x.behind_ms;
        y.attributes = x.attributes;
      }
    }
    ys.resize(n);
    // What stays for the next batch is capacity; not the views into this one, nor big buffers.
    views.clear();
    for (auto& u : unpacked) {
      u.records.clear();
      if (u.inflated.capacity() > (std::size_t{1} << 16))
        std::vector<char>{}.swap(u.inflated);
    }
    return users_vector;
  }

  void on_process_records(const message& m) {
    if (at != phase::active)
      breach(
        fmt::format("processRecords {}: its records would be acknowledged unprocessed", where(at)));
    if (meter && m.millis_behind_latest)
      meter->millis_behind_latest.store(*m.millis_behind_latest, std::memory_order_relaxed);
    // After a ShutdownException the records are still processed (at least once), only never
    // checkpointed: the lease's next owner starts from its last checkpoint.
    const auto now = cfg.now();
    auto cp = guarded([&] { return proc->heartbeat(now); });
    std::vector<std::uint32_t> poisoned;
    auto batch = decode(m, poisoned);
    poison.clear();
    for (auto i : poisoned)
      poison.insert(&batch[i]);
    if (auto later = guarded([&] { return proc->process(batch, now); }))
      cp = std::move(later);
    if (cp && cp->position && !lease_gone)
      checkpoint(cp->position, false);
    send(status_line(m.action));
  }

  // The shard-end checkpoint covers everything the daemon delivered: only records this session
  // processed and flushed fully may be behind it.
  void on_shard_end(const message& m) {
    if (at == phase::fresh || at == phase::ended)
      breach(fmt::format("{} {}: its checkpoint would cover records this session never processed",
                         m.action, where(at)));
    if (at == phase::active)
      guarded([&] { return proc->shutdown(shutdown_reason::terminate, cfg.now()); });
    at = phase::ended;
    if (!lease_gone)
      checkpoint(std::nullopt, true);
    send(status_line(m.action));
  }

  void on_lease_lost(const message& m) {
    if (at == phase::active)
      guarded([&] { return proc->shutdown(shutdown_reason::zombie, cfg.now()); });
    proc.reset();
    at = phase::ended;
    send(status_line(m.action));
  }

  void on_shutdown_requested(const message& m) {
    if (at == phase::active) {
      auto cp = guarded([&] { return proc->shutdown(shutdown_reason::requested, cfg.now()); });
      at = phase::stopping;
      if (cp && cp->position && !lease_gone)
        checkpoint(cp->position, false);
    }
    send(status_line(m.action));
  }

  int run() {
    try {
      while (auto m = next()) {
        switch (m->what) {
          case message::kind::initialize:
            on_initialize(*m);
            break;
          case message::kind::process_records:
            on_process_records(*m);
            spare_records = std::move(m->records);
            break;
          case message::kind::shard_ended:
            on_shard_end(*m);
            break;
          case message::kind::lease_lost:
            on_lease_lost(*m);
            break;
          case message::kind::shutdown:
            if (m->reason == "TERMINATE" || m->reason == "SHARD_END") {
              on_shard_end(*m);
            } else {
              if (m->reason != "ZOMBIE" && m->reason != "LEASE_LOST")
                log(log_level::warning,
                    fmt::format("unknown shutdown reason \"{}\": treated as a lost lease",
                                m->reason));
              on_lease_lost(*m);
            }
            break;
          case message::kind::shutdown_requested:
            on_shutdown_requested(*m);
            break;
          case message::kind::checkpoint:
            log(log_level::warning, "a checkpoint reply without a request; ignored");
            break;
          case message::kind::other:
            if (m->action == "status" || m->action == "record") {
              log(log_level::warning, fmt::format("a stray {} message; ignored", m->action));
              break;
            }
            log(log_level::info, fmt::format("unknown action \"{}\": acknowledged", m->action));
            send(status_line(m->action));
            break;
        }
      }
      return 0;
    } catch (const session_end& e) {
      return e.code;
    }
  }
};

worker::worker(line_io& io, worker_config cfg) : impl_(std::make_unique<impl>(io, std::move(cfg))) {
  // nop
}

worker::~worker() = default;

int worker::run() {
  return impl_->run();
}

const worker_stats& worker::stats() const noexcept {
  return impl_->stats;
}

} // namespace shardflow::mld
