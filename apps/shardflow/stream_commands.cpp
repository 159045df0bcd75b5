#include "apps/shardflow/stream_commands.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/guarded.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/partition_key.hpp"
#include "apps/shardflow/signals.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/core/result.hpp>
#include <shardflow/flushers/record_line.hpp>
#include <shardflow/local/local_stream.hpp>

namespace shardflow::cli {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

struct put_config {
  std::string stream;
  std::vector<std::string> files;
  std::size_t shards = 0;
  std::string format = "ndjson";
  std::string key_field;
  std::string max_record_size = default_max_record_size;
};

// Reads the lines of a file or of standard input ("-"), without their newline (and a '\r' before
// it). A file that cannot be opened because it is not there is bad input (a wrong argument); any
// other failure to open or read it is an I/O failure.
class line_reader {
public:
  explicit line_reader(const std::string& name)
    : name_(name == "-" ? std::string{"<stdin>"} : name), fd_(STDIN_FILENO) {
    if (name == "-")
      return;
    fd_ = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw error{errno == ENOENT ? errc::bad_input : errc::io_failed,
                  fmt::format("cannot read {}: {}", name, std::strerror(errno))};
  }

  ~line_reader() {
    if (fd_ != STDIN_FILENO)
      ::close(fd_);
  }

  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  /// Sets `line` to the next line; returns false at the end of the input, and when a stop signal
  /// interrupted a read (`interrupted()`; a partial line read so far is not returned).
  bool next(std::string& line) {
    for (;;) {
      if (interrupted_)
        return false;
      const auto nl = buf_.find('\n', cur_);
      if (nl != std::string::npos || (eof_ && cur_ < buf_.size())) {
        const auto end = nl != std::string::npos ? nl : buf_.size();
        line.assign(buf_, cur_, end - cur_);
        cur_ = end + 1;
        if (!line.empty() && line.back() == '\r')
          line.pop_back();
        return true;
      }
      if (eof_)
        return false;
      fill();
    }
  }

  const std::string& name() const noexcept {
    return name_;
  }

  /// Calls `f` whenever the next read would wait (a pipe or terminal with nothing to read yet), so
  /// that what was read before can be written out first.
  void before_waiting(std::function<void()> f) {
    before_waiting_ = std::move(f);
  }

  /// Whether a stop signal ended the input early (see `next`).
  bool interrupted() const noexcept {
    return interrupted_;
  }

private:
  void fill() {
    buf_.erase(0, std::min(cur_, buf_.size()));
    cur_ = 0;
    char chunk[1 << 16];
    if (before_waiting_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) == 0)
        before_waiting_();
    }
    for (;;) {
      const auto n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) {
        if (!cli::stop_requested())
          continue;
        interrupted_ = true;
        return;
      }
      if (n < 0)
        throw error{errc::io_failed,
                    fmt::format("cannot read {}: {}", name_, std::strerror(errno))};
      eof_ = n == 0;
      buf_.append(chunk, static_cast<std::size_t>(n));
      return;
    }
  }

  std::string name_;
  int fd_;
  std::string buf_;
  std::size_t cur_ = 0;
  bool eof_ = false;
  bool interrupted_ = false;
  std::function<void()> before_waiting_;
};

// Makes the record of one input line; returns why it cannot be one.
status record_of(const put_config& cfg, std::string& line, stream_record& x) {
  x.arrival_ms = now_ms();
  if (cfg.format == "text") {
    // The line is the partition key too, and a record line holds keys as JSON strings.
    if (!simdjson::validate_utf8(line.data(), line.size()))
      return fail("not valid UTF-8 (with --format text the line is the partition key, which must "
                  "be text)");
    x.partition_key = line;
  } else {
    auto key = partition_key_of(line, cfg.key_field);
    if (!key)
      return fail(key.error());
    x.partition_key = std::move(*key);
  }
  x.data = std::move(line);
  return {};
}

// Why a line longer than --max-record-size is not a record.
status too_long(std::size_t max_line, const std::string& option_text,
                const char* what = "the line is") {
  return fail(fmt::format("{} longer than {} bytes (--max-record-size {}; run refuses such a line "
                          "too)",
                          what, max_line, option_text));
}

// Whether the line the stream stores for `x`, the one `run` reads back and measures (key and data
// JSON-escaped, or base64), is longer than `max_line`. Escaping at most sextuples a byte, so a
// record far below the limit is told without encoding it; `scratch` is reused between calls.
bool stored_too_long(const stream_record& x, std::size_t max_line, std::string& scratch) {
  if ((x.partition_key.size() + x.data.size()) * 6 + 1024 <= max_line)
    return false;
  scratch.clear();
  append_line(scratch, x);
  return scratch.size() - 1 > max_line; // without its newline, as run counts
}

local::stream_dir stream_for(const put_config& cfg) {
  auto stream = local::stream_dir::exists(cfg.stream) || cfg.shards == 0
                  ? local::stream_dir::open(cfg.stream)
                  : local::stream_dir::create(cfg.stream, cfg.shards);
  if (cfg.shards != 0 && stream.shards() != cfg.shards)
    throw error{errc::bad_input,
                fmt::format("{} has {} shards, not {}", cfg.stream, stream.shards(), cfg.shards)};
  return stream;
}

int run_put(const put_config& cfg) {
  const auto max_line = checked(parse_record_size("--max-record-size", cfg.max_record_size));
  auto stream = stream_for(cfg);
  local::stream_writer writer{stream};
  std::vector<std::string> inputs = cfg.files;
  if (inputs.empty())
    inputs.push_back("-");
  std::uint64_t total = 0;
  std::string scratch;
  // A first SIGINT or SIGTERM ends the input after the line being appended (a read that waits,
  // on a pipe or a terminal, is cut short); the lines appended so far are flushed and named, so a
  // rerun can start after them. A second signal ends the process at once.
  cli::stop_on_signals("put", "the lines appended so far stay in the stream, whole");
  const auto interrupted = [&](const line_reader& in, std::uint64_t number) {
    writer.flush();
    say(log_level::warning,
        "interrupted: {} appended into {} ({}: {} read), the rest of the input was not; a rerun "
        "of the same input appends those again",
        plural(total, "line"), cfg.stream, in.name(), plural(number, "line"));
    return exit_interrupted;
  };
  for (const auto& name : inputs) {
    line_reader in{name};
    in.before_waiting([&] { writer.flush(); }); // lines that came through a pipe are in at once
    std::string line;
    std::uint64_t number = 0;
    for (;;) {
      if (cli::stop_requested())
        return interrupted(in, number);
      if (!in.next(line))
        break;
      ++number;
      if (line.empty())
        continue;
      stream_record x;
      // A line `run` would refuse as bad input (its --max-record-size, the same default) is refused
      // here, before it is written.
      status ok = line.size() > max_line ? too_long(max_line, cfg.max_record_size)
                                         : record_of(cfg, line, x);
      if (ok && stored_too_long(x, max_line, scratch))
        ok = too_long(max_line, cfg.max_record_size,
                      "the record's line in the stream (its key and data escaped) would be");
      if (!ok) {
        writer.flush(); // the lines before it are in
        throw error{errc::bad_input, fmt::format("{}:{}: {} (after {} appended)", in.name(), number,
                                                 ok.error(), plural(total, "line"))};
      }
      writer.append(x);
      ++total;
    }
    if (in.interrupted())
      return interrupted(in, number);
  }
  writer.flush();
  say(log_level::info, "{} into {} ({})", plural(total, "record"), cfg.stream,
      plural(stream.shards(), "shard"));
  return exit_ok;
}

struct generate_config {
  std::string stream;
  std::size_t shards = 4;
  std::uint64_t records = 1'000'000;
  std::size_t data_bytes = 100;
  std::uint64_t keys = 100'000;
  std::uint64_t seed = 42;
};

int run_generate(const generate_config& cfg) {
  auto stream = local::stream_dir::create(cfg.stream, cfg.shards);
  local::stream_writer writer{stream};
  std::mt19937_64 rng{cfg.seed};
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  stream_record x;
  const std::string filler = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (std::uint64_t i = 0; i < cfg.records; ++i) {
    x.partition_key = fmt::format("key-{}", rng() % cfg.keys);
    x.arrival_ms = now_ms();
    x.data = fmt::format("{{\"id\":{},\"key\":\"{}\",\"payload\":\"", i, x.partition_key);
    while (x.data.size() + 2 < cfg.data_bytes)
      x.data.push_back(filler[rng() % filler.size()]);
    x.data += "\"}";
    writer.append(x);
    if ((i & 0xFFFF) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_report >= std::chrono::seconds(1)) {
        last_report = now;
        if (tty)
          fmt::print(stderr, "\rgenerate: {:.0f}% ({} of {} records)", 100.0 * i / cfg.records, i,
                     cfg.records);
        else
          say(log_level::info, "{:.0f}% ({} of {} records)", 100.0 * i / cfg.records, i,
              cfg.records);
      }
    }
  }
  writer.flush();
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty)
    fmt::print(stderr, "\r\033[K"); // the progress line gives way to the summary
  say(log_level::info, "{} of ~{} bytes into {} ({}) in {:.2f} s", plural(cfg.records, "record"),
      cfg.data_bytes, cfg.stream, plural(cfg.shards, "shard"), secs);
  return exit_ok;
}

} // namespace

void add_put_command(CLI::App& app, int& exit_code) {
  auto cfg = std::make_shared<put_config>();
  auto* cmd = app.add_subcommand(
    "put", "Append records (NDJSON objects or lines of text) to a local stream, routed by the MD5 "
           "of their partition key");
  cmd->add_option("stream", cfg->stream, "the stream directory")->required();
  cmd->add_option("files", cfg->files, "input files (default: standard input; - is stdin too)");
  cmd->add_option("--shards", cfg->shards, "create the stream with this many shards if missing")
    ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--format", cfg->format, "input format")
    ->check(CLI::IsMember({"ndjson", "text"}))
    ->capture_default_str();
  cmd->add_option("--key", cfg->key_field,
                  "NDJSON field whose value is the partition key (default: the whole line)");
  cmd
    ->add_option("--max-record-size", cfg->max_record_size,
                 "longest record line: a longer one is refused (exit 3) before anything of it is "
                 "written (run refuses it too, by the same default)")
    ->capture_default_str();
  cmd->callback([cfg, &exit_code] { exit_code = guarded("put", [&] { return run_put(*cfg); }); });
}

void add_generate_command(CLI::App& app, int& exit_code) {
  auto cfg = std::make_shared<generate_config>();
  auto* cmd = app.add_subcommand("generate",
                                 "Write a synthetic local stream (for demos and benchmarks)");
  cmd
    ->add_option("stream", cfg->stream,
                 "the stream directory (created; on an existing stream with the same --shards the "
                 "records are appended, and with the same --seed they are the same records again)")
    ->required();
  cmd->add_option("--shards", cfg->shards, "number of shards")
    ->check(CLI::Range(1, 1 << 20))
    ->capture_default_str();
  cmd->add_option("--records", cfg->records, "records in total")->capture_default_str();
  cmd->add_option("--data-bytes", cfg->data_bytes, "approximate bytes of data per record")
    ->check(CLI::Range(16, 1 << 24))
    ->capture_default_str();
  cmd->add_option("--keys", cfg->keys, "distinct partition keys")
    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
    ->capture_default_str();
  cmd->add_option("--seed", cfg->seed, "random seed")->capture_default_str();
  cmd->callback(
    [cfg, &exit_code] { exit_code = guarded("generate", [&] { return run_generate(*cfg); }); });
}

void check_input(const std::string& path) {
  const bool stdin_input = path.empty() || path == "-";
  const auto name = stdin_input ? std::string{"<stdin>"} : path;
  struct stat st {};
  if ((stdin_input ? ::fstat(STDIN_FILENO, &st) : ::stat(path.c_str(), &st)) != 0)
    throw error{errno == ENOENT ? errc::bad_input : errc::io_failed,
                fmt::format("cannot read {}: {}", name, std::strerror(errno))};
  if (S_ISDIR(st.st_mode))
    throw error{errc::io_failed, fmt::format("cannot read {}: {}", name, std::strerror(EISDIR))};
  if (!stdin_input && ::access(path.c_str(), R_OK) != 0)
    throw error{errc::io_failed, fmt::format("cannot read {}: {}", name, std::strerror(errno))};
}

} // namespace shardflow::cli
