#include <shardflow/local/local_stream.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/dead_letter_file.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/flushers/record_line.hpp>
#include <shardflow/flushers/write_all.hpp>

namespace fs = std::filesystem;

namespace shardflow::local {

namespace {

constexpr std::string_view meta_name = "shardflow-stream";
constexpr std::string_view meta_magic = "shardflow local stream 1";

[[noreturn]] void fail_io(const std::string& what, const fs::path& file) {
  throw error{errc::io_failed, fmt::format("{} {}: {}", what, file.string(), std::strerror(errno))};
}

std::uint64_t size_of(int fd, const fs::path& file) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    fail_io("cannot stat", file);
  return static_cast<std::uint64_t>(st.st_size);
}

// Holds the writers' lock of a shard file for a scope (readers take none).
class writer_lock {
public:
  writer_lock(int fd, const fs::path& file) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR)
        fail_io("cannot lock", file);
  }
  ~writer_lock() {
    ::flock(fd_, LOCK_UN);
  }
  writer_lock(const writer_lock&) = delete;
  writer_lock& operator=(const writer_lock&) = delete;

private:
  int fd_;
};

__extension__ typedef unsigned __int128 uint128;

} // namespace

std::size_t route(std::string_view partition_key, std::size_t shards) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(partition_key.data(), partition_key.size(), digest, &size, EVP_md5(), nullptr);
  std::uint64_t high = 0;
  for (int i = 0; i < 8; ++i)
    high = (high << 8) | digest[i];
  return static_cast<std::size_t>((static_cast<uint128>(high) * shards) >> 64);
}

std::string shard_name(std::size_t i) {
  return fmt::format("shard-{:05}", i);
}

// -- stream_dir ----------------------------------------------------------------------------------

bool stream_dir::exists(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / meta_name, ec);
}

namespace {

// Returns the text of the meta file of `dir`: no such file is bad input (no stream there), one
// that cannot be read (an unreadable directory) an I/O error.
std::string read_meta(const fs::path& dir) {
  const auto file = dir / meta_name;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
    throw error{errc::bad_input,
                fmt::format("{} is not a local stream (no {} file); create one with "
                            "`shardflow put --shards N` or `shardflow generate`",
                            dir.string(), meta_name)};
  if (fd < 0)
    fail_io("cannot open the stream's meta file", file);
  std::string text; // a few bytes; more than 4 KiB is no meta file of ours anyway
  char chunk[512];
  for (;;) {
    const auto n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      const int why = errno;
      ::close(fd);
      errno = why;
      fail_io("cannot read the stream's meta file", file);
    }
    if (n == 0 || text.size() > 4096)
      break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

} // namespace

stream_dir stream_dir::open(const fs::path& dir) {
  std::istringstream in{read_meta(dir)};
  std::string magic;
  std::getline(in, magic);
  std::string word;
  std::size_t shards = 0;
  in >> word >> shards;
  if (magic != meta_magic || word != "shards" || shards == 0)
    throw error{errc::bad_input,
                fmt::format("{}: unknown format (expected \"{}\" and a shard count)",
                            (dir / meta_name).string(), meta_magic)};
  stream_dir result;
  result.dir_ = dir;
  result.shards_ = shards;
  return result;
}

namespace {

// Writes the stream's meta file under a temporary name, syncs it and renames it into place, so a
// failed write (a full disk) leaves no meta file: the directory is no stream, and a rerun makes it.
void write_meta(const fs::path& dir, std::size_t shards) {
  const auto tmp = dir / (std::string{meta_name} + ".tmp");
  const auto text = fmt::format("{}\nshards {}\n", meta_magic, shards);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail_io("cannot create", tmp);
  const bool written = write_all(fd, text.data(), text.size()) && ::fsync(fd) == 0;
  int why = errno;
  const bool closed = ::close(fd) == 0;
  if (written && !closed)
    why = errno;
  if (!written || !closed) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    errno = why;
    fail_io("cannot write", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, dir / meta_name, ec);
  if (ec)
    throw error{errc::io_failed,
                fmt::format("cannot create {}: {}", (dir / meta_name).string(), ec.message())};
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0 || ::fsync(d) != 0) {
    const int e = errno;
    if (d >= 0)
      ::close(d);
    errno = e;
    fail_io("cannot sync the directory", dir);
  }
  ::close(d);
}

} // namespace

stream_dir stream_dir::create(const fs::path& dir, std::size_t shards) {
  if (shards == 0)
    throw error{errc::bad_input, "a stream needs at least one shard"};
  if (exists(dir)) {
    auto s = open(dir);
    if (s.shards() != shards)
      throw error{errc::bad_input, fmt::format("{} already has {} shards, not {}", dir.string(),
                                               s.shards(), shards)};
    return s;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw error{errc::io_failed, fmt::format("cannot create {}: {}", dir.string(), ec.message())};
  stream_dir result;
  result.dir_ = dir;
  result.shards_ = shards;
  for (std::size_t i = 0; i < shards; ++i) {
    auto fd = ::open(result.shard_file(i).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
      fail_io("cannot create", result.shard_file(i));
    ::close(fd);
  }
  write_meta(dir, shards);
  return result;
}

fs::path stream_dir::shard_file(std::size_t i) const {
  return dir_ / (shard_name(i) + ".ndjson");
}

// -- stream_writer -------------------------------------------------------------------------------

stream_writer::stream_writer(const stream_dir& stream)
  : fds_(stream.shards(), -1),
    buffers_(stream.shards()),
    counts_(stream.shards()),
    files_(stream.shards()) {
  for (std::size_t i = 0; i < stream.shards(); ++i) {
    files_[i] = stream.shard_file(i);
    fds_[i] = ::open(files_[i].c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fds_[i] < 0)
      fail_io("cannot open", files_[i]);
  }
}

stream_writer::~stream_writer() {
  for (auto fd : fds_)
    if (fd >= 0)
      ::close(fd);
}

void stream_writer::append(const stream_record& x) {
  const auto s = route(x.partition_key, fds_.size());
  append_line(buffers_[s], x);
  ++counts_[s];
  if (buffers_[s].size() >= (1u << 20))
    write_out(s);
}

void stream_writer::write_out(std::size_t shard) {
  auto& b = buffers_[shard];
  const int fd = fds_[shard];
  const auto& file = files_[shard];
  writer_lock lock{fd, file};
  // Under the lock no live writer is in the middle of a line: a fragment is a dead writer's.
  cut_partial_line(fd, size_of(fd, file), file);
  if (!write_all(fd, b.data(), b.size())) {
    const int saved = errno;
    // Only our own partial line goes: whole lines that got out may have been read (and
    // checkpointed) by a reader following the file already, so they stay (at-least-once).
    try {
      cut_partial_line(fd, size_of(fd, file), file);
    } catch (const error&) {
      // the write's own failure is the one to report
    }
    errno = saved;
    fail_io("cannot write", file);
  }
  b.clear();
}

void stream_writer::flush() {
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    if (buffers_[i].empty())
      continue;
    write_out(i);
    if (::fsync(fds_[i]) != 0)
      fail_io("cannot sync", files_[i]);
  }
}

// -- input_problems ------------------------------------------------------------------------------

void input_problems::report(std::string message) {
  std::lock_guard<std::mutex> guard{mtx_};
  messages_.push_back(std::move(message));
}

void input_problems::report_stop(const shard_id& shard, std::string message, std::string where) {
  std::lock_guard<std::mutex> guard{mtx_};
  stop_of_[shard] = where.empty() ? message : std::move(where);
  if (std::find(stops_.begin(), stops_.end(), message) != stops_.end())
    return; // a restarted shard that stops at the same place again
  messages_.push_back(message);
  stops_.push_back(std::move(message));
}

std::optional<std::string> input_problems::stop_of(const shard_id& shard) const {
  std::lock_guard<std::mutex> guard{mtx_};
  const auto i = stop_of_.find(shard);
  if (i == stop_of_.end())
    return std::nullopt;
  return i->second;
}

std::vector<std::string> input_problems::stops() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stops_;
}

std::vector<std::string> input_problems::all() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return messages_;
}

void input_problems::count_dead_letter() noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  ++dead_letters_;
}

std::uint64_t input_problems::dead_letters() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return dead_letters_;
}

// -- file_source ---------------------------------------------------------------------------------

std::uint64_t line_number_at(const fs::path& file, std::uint64_t offset) {
  std::ifstream in{file, std::ios::binary};
  std::uint64_t line = 1;
  std::vector<char> chunk(1 << 16);
  std::uint64_t seen = 0;
  while (seen < offset && in) {
    in.read(chunk.data(),
            static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), offset - seen)));
    const auto n = static_cast<std::size_t>(in.gcount());
    for (std::size_t i = 0; i < n; ++i)
      line += chunk[i] == '\n' ? 1 : 0;
    seen += n;
    if (n == 0)
      break;
  }
  return line;
}

namespace {

// Where a dead letter came from and where its copy went (a line of the context file).
struct dead_letter {
  std::uint64_t offset = 0; // of the line in the shard file
  std::uint64_t line = 0;   // its number there
  std::string reason;
  std::uint64_t at = 0;    // the offset of its copy in the dead-letter file
  std::uint64_t bytes = 0; // copied so far (its newline not counted)
};

} // namespace

struct file_source::impl {
  fs::path file;
  shard_id shard;
  file_source_config cfg;
  int fd = -1;
  std::optional<dead_letter_file> dead;         // opened at the first dead letter
  std::optional<dead_letter_file> dead_context; // ... and where each came from
  dead_letter letter;                           // the one being written
  std::uint64_t pos = 0;                        // file offset of buf[0]
  std::string buf;                              // buf[0, len) holds file bytes from `pos`
  std::size_t len = 0;
  std::size_t cur = 0;   // start of the next line in buf
  std::size_t scan = 0;  // buf[cur, scan) holds no newline: the search goes on from here
  bool eof = false;      // the last read found no more bytes
  bool reread = false;   // that read ended inside a line, which a writer may cut and write again
  bool stopped = false;  // bad input under the stop policy
  bool skipping = false; // a line longer than max_line_bytes is being moved to the dead letters

  void report(const std::string& message) {
    if (cfg.problems)
      cfg.problems->report(message);
  }

  // Reports a problem that stops the shard: the whole `message`, and where it stopped in short,
  // "`where` (`why`)".
  void report_stop(const std::string& message, const std::string& where, const std::string& why) {
    if (cfg.problems)
      cfg.problems->report_stop(shard, message, fmt::format("{} ({})", where, why));
  }

  // The shard stops before the line at `cur`: reports it (at "FILE:LINE: why").
  void stop_at_line(const std::string& why, const std::string& more = {}) {
    const auto where = fmt::format("{}:{}", file.string(), line_number_at(file, pos + cur));
    report_stop(fmt::format("{}: {}{}", where, why, more), where, why);
    stopped = true;
  }

  // Reads more bytes; returns how many arrived.
  std::size_t fill() {
    if (reread) { // read the partial line again: a writer may have cut it and written another
      reread = false;
      if (::lseek(fd, static_cast<off_t>(pos + cur), SEEK_SET) < 0)
        fail_io("cannot seek in", file);
      len = cur;
      scan = cur;
    }
    if (cur > 0) {
      std::memmove(buf.data(), buf.data() + cur, len - cur);
      pos += cur;
      len -= cur;
      scan -= cur;
      cur = 0;
    }
    constexpr std::size_t chunk = 1 << 20;
    if (buf.size() < len + chunk + simdjson::SIMDJSON_PADDING)
      buf.resize(std::max(2 * buf.size(), len + chunk + simdjson::SIMDJSON_PADDING));
    for (;;) {
      auto n = ::read(fd, buf.data() + len, chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        fail_io("cannot read", file);
      len += static_cast<std::size_t>(n);
      eof = n == 0;
      if (eof)
        at_end_of_file();
      return static_cast<std::size_t>(n);
    }
  }

  // The file has no more bytes now: has it become shorter than what was read?
  void at_end_of_file() {
    const auto size = size_of(fd, file);
    if (size < pos + cur) {
      auto message = fmt::format("{}: the file is now {} bytes, shorter than the {} bytes already "
                                 "read: it was truncated or replaced while being read; the shard "
                                 "stops and its checkpoint stays where it was",
                                 file.string(), size, pos + cur);
      report_stop(message, file.string(), "truncated or replaced while being read");
      throw error{errc::bad_input, message};
    }
    reread = len > cur;
  }

  // Returns whether a line starts at `offset`: the file's start, or just after a newline.
  bool at_line_start(std::uint64_t offset) {
    if (offset == 0)
      return true;
    char before = 0;
    for (;;) {
      const auto n = ::pread(fd, &before, 1, static_cast<off_t>(offset - 1));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        fail_io("cannot read", file);
      return n == 1 && before == '\n';
    }
  }

  // The shard cannot resume at its checkpoint (`problem`): it stays stopped there, or the rewind
  // throws when there is no one to report to.
  void refuse_checkpoint(const std::string& problem, const std::string& why) {
    const auto message = fmt::format("{}: {}: was the stream truncated or replaced? The shard "
                                     "stays stopped at its checkpoint",
                                     file.string(), problem);
    if (!cfg.problems)
      throw error{errc::bad_input, message};
    report_stop(message, file.string(), why);
    stopped = true;
  }

  void seek(std::uint64_t offset) {
    if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0)
      fail_io("cannot seek in", file);
    pos = offset;
    len = 0;
    cur = 0;
    scan = 0;
    eof = false;
    reread = false;
  }

  // Returns the end of the line at `cur` (the index of its newline), reading more as needed, or
  // npos when the file (for now) ends inside it.
  std::size_t line_end() {
    for (;;) {
      auto nl = static_cast<const char*>(std::memchr(buf.data() + scan, '\n', len - scan));
      if (nl != nullptr)
        return static_cast<std::size_t>(nl - buf.data());
      scan = len;
      if (len - cur > cfg.max_line_bytes || fill() == 0)
        return std::string_view::npos;
    }
  }

  // Starts the dead letter of the line at `cur` (line number `line`), set aside for `reason`.
  void begin_dead_letter(std::uint64_t line, std::string reason) {
    if (!dead) {
      dead.emplace(cfg.dead_letter_dir, shard);
      dead_context.emplace(cfg.dead_letter_dir, shard + ".context");
    }
    dead->write({}); // opens the file: the copy starts at its size
    std::error_code ec;
    const auto at = fs::file_size(dead->path(), ec);
    if (ec)
      throw error{errc::io_failed, fmt::format("cannot stat the dead-letter file {}: {}",
                                               dead->path().string(), ec.message())};
    letter = dead_letter{pos + cur, line, std::move(reason), at, 0};
  }

  void write_dead(const char* data, std::size_t size) {
    dead->write({data, size});
    letter.bytes += size;
  }

  // Ends the dead letter: its newline, then its context line, each synced (the copy first, so that
  // a context always names a whole copy).
  void end_dead_letter() {
    dead->write("\n");
    dead->sync();
    std::string ctx = "{\"file\":";
    append_json_string(ctx, file.string());
    ctx += fmt::format(",\"offset\":{},\"line\":{},\"reason\":", letter.offset, letter.line);
    append_json_string(ctx, letter.reason);
    ctx += fmt::format(",\"bytes\":{},\"copy\":", letter.bytes);
    append_json_string(ctx, dead->path().filename().string());
    ctx += fmt::format(",\"at\":{}}}\n", letter.at);
    dead_context->write(ctx);
    dead_context->sync();
    if (cfg.problems)
      cfg.problems->count_dead_letter();
  }

  // A line at `cur` is longer than max_line_bytes: stop, or move it to the dead letters.
  void too_long() {
    const auto why = fmt::format("the line is longer than {} bytes", cfg.max_line_bytes);
    const std::string more = ", the longest record line allowed (--max-record-size)";
    if (cfg.on_bad_input == bad_input_policy::stop)
      return stop_at_line(why, more);
    const auto line = line_number_at(file, pos + cur);
    report(
      fmt::format("{}:{}: {}{} (sent to the dead-letter file)", file.string(), line, why, more));
    begin_dead_letter(line, why);
    skipping = true;
  }

  // Moves the too long line at `cur` to the dead letters a buffer at a time; returns false when the
  // rest of it has not been written yet (follow).
  bool skip_long_line() {
    for (;;) {
      auto nl = static_cast<const char*>(std::memchr(buf.data() + cur, '\n', len - cur));
      const auto end = nl != nullptr ? static_cast<std::size_t>(nl - buf.data()) : len;
      write_dead(buf.data() + cur, end - cur);
      cur = scan = nl != nullptr ? end + 1 : len;
      if (nl == nullptr && fill() > 0)
        continue;
      if (nl == nullptr && cfg.follow)
        return false;
      end_dead_letter(); // the line ended, or the file (finite) ended inside it
      skipping = false;
      return true;
    }
  }
};

namespace {

// Says that the shard file `file` is missing, and how many shards its stream should have.
std::string missing_shard_file(const fs::path& file) {
  auto message = fmt::format("{}: no such file", file.string());
  try {
    const auto stream = stream_dir::open(file.parent_path());
    message += fmt::format("; the stream's {} says {} shard{}", meta_name, stream.shards(),
                           stream.shards() == 1 ? "" : "s");
  } catch (const error&) {
    // no stream around it to compare with: the file alone is named
  }
  return message;
}

} // namespace

file_source::file_source(fs::path file, shard_id shard, file_source_config cfg)
  : impl_(std::make_unique<impl>()) {
  impl_->file = std::move(file);
  impl_->shard = std::move(shard);
  impl_->cfg = std::move(cfg);
  impl_->fd = ::open(impl_->file.c_str(), O_RDONLY | O_CLOEXEC);
  if (impl_->fd < 0 && errno == ENOENT)
    throw error{errc::bad_input, missing_shard_file(impl_->file)};
  if (impl_->fd < 0)
    fail_io("cannot open", impl_->file);
}

file_source::~file_source() {
  if (impl_->fd >= 0)
    ::close(impl_->fd);
}

void file_source::rewind(const std::optional<sequence_number>& after) {
  auto& d = *impl_;
  d.stopped = false;
  d.skipping = false;
  if (!after) {
    d.seek(0);
    return;
  }
  // The checkpoint is the end of the last durable record's line: the next one starts there. (A
  // checkpoint of the start of that line, as written before, replays it: at-least-once.)
  const auto offset = after->base.to_uint64();
  const auto size = size_of(d.fd, d.file);
  if (!offset || *offset > size)
    return d.refuse_checkpoint(fmt::format("the checkpoint (byte {}) lies beyond the end of the "
                                           "file ({} bytes)",
                                           to_string(*after), size),
                               "checkpoint beyond the end of the file");
  if (!d.at_line_start(*offset))
    return d.refuse_checkpoint(fmt::format("the checkpoint (byte {}) is not at the start of a "
                                           "line (line {})",
                                           *offset, line_number_at(d.file, *offset)),
                               "checkpoint inside a line");
  d.seek(*offset);
}

record_batch file_source::read(std::size_t max) {
  auto& d = *impl_;
  std::vector<stream_record> xs;
  xs.reserve(std::min<std::size_t>(max, 4096)); // a feeder's demand; beyond, the vector grows
  while (xs.size() < max && !d.stopped) {
    if (d.skipping) {
      if (!d.skip_long_line())
        break;
      continue;
    }
    const auto end = d.line_end();
    if (end == std::string_view::npos || end - d.cur > d.cfg.max_line_bytes) {
      if (d.len - d.cur > d.cfg.max_line_bytes) {
        d.too_long();
        continue;
      }
      if (d.cfg.follow || d.cur >= d.len)
        break; // wait for the rest of the line (follow), or the file is read
      // Finite input that ends inside a line: a writer may still be at work, or the file was cut.
      // Stop before it (everything before is processed); a rerun takes it once it is whole.
      d.stop_at_line("the file ends in the middle of a line",
                     " (is a writer still at work?); stopped before it");
      break;
    }
    const std::string_view line{d.buf.data() + d.cur, end - d.cur};
    const auto offset = d.pos + d.cur;
    const auto next = end + 1;
    if (line.empty() || line == "\r") {
      d.cur = d.scan = next;
      continue;
    }
    auto& x = xs.emplace_back(); // parsed in place: no move of the record afterwards
    const auto parsed = parse_line(line, x);
    if (parsed) {
      x.sequence.base = sequence_base{d.pos + next}; // the next line starts there
      d.cur = d.scan = next;
      continue;
    }
    xs.pop_back();
    if (d.cfg.on_bad_input == bad_input_policy::dead_letter) {
      const auto number = line_number_at(d.file, offset);
      d.begin_dead_letter(number, parsed.error());
      d.write_dead(line.data(), line.size());
      d.end_dead_letter();
      d.report(fmt::format("{}:{}: {} (sent to the dead-letter file)", d.file.string(), number,
                           parsed.error()));
      d.cur = d.scan = next;
      continue;
    }
    d.stop_at_line(parsed.error()); // the shard stops before this line; a rerun resumes here
  }
  return record_batch{std::move(xs)};
}

bool file_source::stopped() const {
  return impl_->stopped;
}

bool file_source::at_end() const {
  auto& d = *impl_;
  return d.stopped || (!d.cfg.follow && !d.skipping && d.eof && d.cur >= d.len);
}

} // namespace shardflow::local
