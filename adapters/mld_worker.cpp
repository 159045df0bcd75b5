#include "adapters/mld_worker.hpp"

#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include "flushers/base64.hpp"
#include "adapters/kpl.hpp"
#include "adapters/mld_protocol.hpp"
#include "flushers/error.hpp"
#include "flushers/write_all.hpp"

namespace shardflow::mld {

line_io::~line_io() = default;

shard_port::~shard_port() = default;

void shard_port::acknowledged(const sequence_number&) {
  // nop: a local processor keeps nothing for replay
}

// -- fd_line_io ------------------------------------------------------------------------------------

fd_line_io::fd_line_io(int in, int out) : in_(in), out_(out) {
  // nop
}

std::optional<std::string_view> fd_line_io::read_line() {
  for (;;) {
    auto nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      std::string_view line{buf_.data() + pos_, nl - pos_};
      pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      return line;
    }
    if (eof_) {
      if (pos_ >= buf_.size())
        return std::nullopt;
      std::string_view line{buf_.data() + pos_, buf_.size() - pos_};
      pos_ = buf_.size();
      return line;
    }
    if (pos_ > 0) { // the previous line's view is no longer needed: compact
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const auto old = buf_.size();
    buf_.resize(old + (1 << 20));
    ssize_t n;
    do {
      n = ::read(in_, buf_.data() + old, 1 << 20);
    } while (n < 0 && errno == EINTR);
    buf_.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
    buf_.reserve(buf_.size() + 64); // padding: the parser may read past a line's end
    eof_ = n <= 0;
  }
}

bool fd_line_io::write_line(const std::string& line) {
  const std::string out = line + "\n";
  return write_all(out_, out.data(), out.size()); // false on EPIPE: the daemon is gone
}

// -- the worker ------------------------------------------------------------------------------------

namespace {

class local_shard_port final : public shard_port {
public:
  local_shard_port(flusher_factory make, batch_config batch)
    : make_(std::move(make)), batch_(batch) {
  }

  void open(const shard_id& id, batch_processor::time_point now) override {
    proc_ = std::make_unique<batch_processor>(
      id, std::make_unique<poison_filter>(make_(id), &poison_), batch_, now);
  }

  std::optional<checkpoint> heartbeat(batch_processor::time_point now) override {
    return proc_->heartbeat(now);
  }

  std::optional<checkpoint> process(const record_batch& batch, const std::vector<std::uint32_t>& poison,
                                    batch_processor::time_point now) override {
    poison_.clear();
    for (auto i : poison)
      poison_.insert(&batch[i]);
    return proc_->process(batch, now);
  }

  std::optional<checkpoint> shutdown(shutdown_reason reason, batch_processor::time_point now) override {
    return proc_->shutdown(reason, now);
  }

private:
  flusher_factory make_;
  batch_config batch_;
  std::unique_ptr<batch_processor> proc_;
  std::unordered_set<const stream_record*> poison_;
};

// Stops the session: the flusher failed, or the daemon is gone.
struct session_end {
  int code;
};

enum class checkpoint_outcome : std::uint8_t { done, lease_gone, failed };

} // namespace

struct worker::impl {
  line_io& io;
  worker_config cfg;
  worker_stats stats;
  message_parser parser;
  std::unique_ptr<shard_port> proc; // set once initialized
  std::string shard;
  bool v2 = true;
  bool lease_gone = false; // after ShutdownException: never checkpoint again
  bool stopped = false;    // after shutdownRequested: records are not processed any more
  std::mt19937_64 rng{std::random_device{}()};
  // Reused by decode: the indexes of the records that may be aggregates, their data, what they hold.
  std::vector<std::uint32_t> carriers;
  std::vector<std::string_view> views;
  std::vector<kpl::unpack_result> unpacked;

  impl(line_io& i, worker_config c) : io(i), cfg(std::move(c)) {
    if (!cfg.sleep)
      cfg.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    if (!cfg.now)
      cfg.now = [] { return std::chrono::steady_clock::now(); };
    if (!cfg.log)
      cfg.log = [](const std::string& s) { fmt::print(stderr, "shardflow mld: {}\n", s); };
  }

  void log(const std::string& s) {
    cfg.log(shard.empty() ? s : fmt::format("{}: {}", shard, s));
  }

  void send(const std::string& line) {
    if (!io.write_line(line)) {
      log("the daemon closed the connection");
      throw session_end{1};
    }
  }

  // Reads the next message, skipping blank and undecodable lines; nothing at end of input.
  std::optional<message> next() {
    for (;;) {
      auto line = io.read_line();
      if (!line)
        return std::nullopt;
      if (line->find_first_not_of(" \t\r") == std::string::npos)
        continue;
      message m;
      if (auto why = parser.parse(*line, m, io.padded()); !why.empty()) {
        ++stats.ignored_lines;
        log(fmt::format("ignoring a line that is {}: {:.80}", why, std::string{*line}));
        continue;
      }
      return m;
    }
  }

  // Runs one checkpoint exchange (with retries). `unbounded` retries throttling forever (shard end).
  checkpoint_outcome checkpoint(const std::optional<sequence_number>& at, bool unbounded) {
    if (at && at->is_sub_record()) {
      // The daemon can only checkpoint whole aggregates that we unpacked ourselves: sending the
      // carrier's coordinates here would cover user records that are not durable yet.
      log(fmt::format("not checkpointing inside an aggregate ({}); waiting for its last record",
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
    for (unsigned attempt = 0;; ++attempt) {
      send(checkpoint_line(v2, seq, sub));
      std::optional<message> reply;
      while ((reply = next())) {
        if (reply->what == message::kind::checkpoint)
          break;
        log(fmt::format("expected a checkpoint reply, got {}; ignoring it", reply->action));
      }
      if (!reply) {
        log("end of input while waiting for a checkpoint reply; its outcome is unknown");
        throw session_end{0};
      }
      if (!reply->error) {
        ++stats.checkpoints;
        return checkpoint_outcome::done;
      }
      ++stats.checkpoint_errors;
      const auto& err = *reply->error;
      if (err == "ShutdownException") {
        log("checkpoint refused with ShutdownException: the lease is gone; no more checkpoints");
        lease_gone = true;
        return checkpoint_outcome::lease_gone;
      }
      const bool retryable = err == "ThrottlingException" || err == "KinesisClientLibDependencyException";
      if (!retryable) {
        log(fmt::format("checkpoint at {} failed with {}; not retried", seq.value_or("null"), err));
        return checkpoint_outcome::failed;
      }
      if (!unbounded && attempt >= cfg.checkpoint_retries) {
        log(fmt::format("checkpoint at {} failed with {} {} times; giving up on it",
                        seq.value_or("null"), err, attempt + 1));
        return checkpoint_outcome::failed;
      }
      std::uniform_real_distribution<double> jitter{0.5, 1.0};
      const auto wait = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng)));
      log(fmt::format("checkpoint at {} failed with {}; retry {} in {} ms", seq.value_or("null"), err,
                      attempt + 1, wait.count()));
      cfg.sleep(wait);
      delay = std::min(delay * 2, cfg.checkpoint_backoff_max);
    }
  }

  template <class F>
  auto guarded(F&& f) {
    try {
      return f();
    } catch (const error& e) {
      log(fmt::format("fatal: {}", e.what()));
      throw session_end{1};
    }
  }

  void on_initialize(const message& m) {
    shard = m.shard_id;
    v2 = m.has_sequence_key;
    guarded([&] {
      auto port = cfg.make_port ? cfg.make_port() : local_port(cfg.make_flusher, cfg.batch);
      port->open(shard, cfg.now());
      proc = std::move(port);
    });
    log(fmt::format("initialized at {} (protocol {})", m.sequence_number.value_or("null"),
                    v2 ? "v2" : "v1"));
    send(status_line(m.action));
  }

  // Decodes the records of `m`; `poisoned` gets the indexes of those whose data is not base64.
  // Records that may carry an aggregate are unpacked together (their MD5s are computed side by
  // side), and each aggregate is replaced by its user records.
  record_batch decode(const message& m, std::vector<std::uint32_t>& poisoned) {
    std::vector<stream_record> xs;
    xs.reserve(m.records.size());
    poisoned.clear();
    carriers.clear();
    for (auto& w : m.records) {
      auto& x = xs.emplace_back();
      try {
        x.sequence.base = sequence_base::parse(w.sequence_number);
      } catch (const error& e) {
        xs.pop_back();
        ++stats.poison;
        log(fmt::format("skipping a record without a usable sequence number: {}", e.what()));
        continue;
      }
      x.sequence.sub = w.sub_sequence_number;
      x.partition_key.assign(w.partition_key);
      x.arrival_ms = w.arrival_ms;
      x.behind_ms = m.millis_behind_latest;
      if (w.data_null || !base64::decode(w.data_base64, x.data)) {
        ++stats.poison;
        log(fmt::format("poison record at {}: its data is not valid base64", w.sequence_number));
        x.data.clear();
        poisoned.push_back(static_cast<std::uint32_t>(xs.size() - 1));
        continue;
      }
      if (kpl::may_be_aggregate(x.data, cfg.erlmld_magics))
        carriers.push_back(static_cast<std::uint32_t>(xs.size() - 1));
    }
    if (!carriers.empty())
      xs = unpack_aggregates(std::move(xs), poisoned);
    record_batch batch{std::move(xs)};
    stats.records += batch.size();
    return batch;
  }

  // Replaces every aggregate among `xs` (at the `carriers` indexes) by its user records, which keep
  // their carrier's sequence numbers; renumbers `poisoned` to match.
  std::vector<stream_record> unpack_aggregates(std::vector<stream_record> xs,
                                               std::vector<std::uint32_t>& poisoned) {
    views.clear();
    for (auto i : carriers)
      views.emplace_back(xs[i].data);
    kpl::unpack_all(views.data(), views.size(), cfg.erlmld_magics, unpacked);
    std::size_t users = 0;
    for (auto& u : unpacked)
      users += u.records.size();
    std::vector<stream_record> ys;
    ys.reserve(xs.size() + users);
    std::size_t next_carrier = 0;
    std::size_t next_poison = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      auto& x = xs[i];
      if (next_poison < poisoned.size() && poisoned[next_poison] == i)
        poisoned[next_poison++] = static_cast<std::uint32_t>(ys.size());
      if (next_carrier == carriers.size() || carriers[next_carrier] != i) {
        ys.push_back(std::move(x));
        continue;
      }
      const auto& u = unpacked[next_carrier++];
      if (u.what == kpl::unpack_result::kind::corrupt) {
        ++stats.corrupt_aggregates;
        log(fmt::format("record at {} looks like an aggregate but {}; delivered as one record",
                        to_string(x.sequence), u.why));
      }
      if (u.what != kpl::unpack_result::kind::aggregate) {
        ys.push_back(std::move(x));
        continue;
      }
      ++stats.aggregates;
      const auto n = static_cast<std::uint32_t>(u.records.size());
      auto sequence = x.sequence;
      sequence.user_total = n;
      for (std::uint32_t k = 0; k < n; ++k) {
        sequence.user_sub = k;
        // Built whole, not default-constructed and then assigned: zeroing 192 bytes first was
        // half of this loop's time.
        ys.push_back(stream_record{std::string{u.records[k].partition_key}, std::string{u.records[k].data},
                                   sequence, x.arrival_ms, x.behind_ms});
      }
    }
    // What stays for the next batch is capacity; not the views into this one, nor big buffers.
    views.clear();
    for (auto& u : unpacked) {
      u.records.clear();
      if (u.inflated.capacity() > (std::size_t{1} << 16))
        std::vector<char>{}.swap(u.inflated);
    }
    return ys;
  }

  void on_process_records(const message& m) {
    if (!proc || stopped || lease_gone) {
      log(!proc ? "records before initialize"
                : (stopped ? "records after shutdownRequested: not processed"
                           : "records after the lease was lost: not processed (another worker owns them)"));
      send(status_line(m.action));
      return;
    }
    const auto now = cfg.now();
    auto cp = guarded([&] { return proc->heartbeat(now); });
    std::vector<std::uint32_t> poisoned;
    auto batch = decode(m, poisoned);
    if (auto later = guarded([&] { return proc->process(batch, poisoned, now); }))
      cp = std::move(later);
    if (cp && cp->position && !lease_gone && checkpoint(cp->position, false) == checkpoint_outcome::done)
      proc->acknowledged(*cp->position);
    send(status_line(m.action));
  }

  void on_shard_end(const message& m) {
    if (proc && !stopped)
      guarded([&] { return proc->shutdown(shutdown_reason::terminate, cfg.now()); });
    if (!lease_gone)
      checkpoint(std::nullopt, true);
    send(status_line(m.action));
  }

  void on_lease_lost(const message& m) {
    if (proc && !stopped)
      guarded([&] { return proc->shutdown(shutdown_reason::zombie, cfg.now()); });
    proc.reset();
    send(status_line(m.action));
  }

  void on_shutdown_requested(const message& m) {
    if (proc && !stopped) {
      auto cp = guarded([&] { return proc->shutdown(shutdown_reason::requested, cfg.now()); });
      stopped = true;
      if (cp && cp->position && !lease_gone
          && checkpoint(cp->position, false) == checkpoint_outcome::done)
        proc->acknowledged(*cp->position);
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
                log(fmt::format("unknown shutdown reason \"{}\": treated as a lost lease", m->reason));
              on_lease_lost(*m);
            }
            break;
          case message::kind::shutdown_requested:
            on_shutdown_requested(*m);
            break;
          case message::kind::checkpoint:
            log("a checkpoint reply without a request; ignored");
            break;
          case message::kind::other:
            if (m->action == "status" || m->action == "record") {
              log(fmt::format("a stray {} message; ignored", m->action));
              break;
            }
            log(fmt::format("unknown action \"{}\": acknowledged", m->action));
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

std::unique_ptr<shard_port> local_port(flusher_factory make_flusher, batch_config batch) {
  return std::make_unique<local_shard_port>(std::move(make_flusher), batch);
}

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
