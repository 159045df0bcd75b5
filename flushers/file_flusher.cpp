#include <shardflow/flushers/file_flusher.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/record_line.hpp>
#include <shardflow/flushers/write_all.hpp>

namespace fs = std::filesystem;

namespace shardflow {

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& file) {
  throw error{errc::io_failed, fmt::format("{} {}: {}", what, file.string(), std::strerror(errno))};
}

void write_or_fail(int fd, const std::string& data, const fs::path& file) {
  if (!write_all(fd, data.data(), data.size()))
    fail("cannot write", file);
}

} // namespace

std::string file_name_of(const shard_id& id) {
  static constexpr char hex[] = "0123456789ABCDEF";
  if (id.empty())
    return "%";
  std::string out;
  out.reserve(id.size());
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    const bool plain = std::isalnum(c) != 0 || c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain && c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

std::uint64_t cut_partial_line(int fd, std::uint64_t size, const fs::path& file) {
  char last = '\n';
  if (size == 0 || (::pread(fd, &last, 1, static_cast<off_t>(size - 1)) == 1 && last == '\n'))
    return size;
  std::uint64_t end = size;
  char buf[4096];
  bool found = false;
  while (end > 0 && !found) {
    const auto chunk = std::min<std::uint64_t>(sizeof buf, end);
    if (::pread(fd, buf, chunk, static_cast<off_t>(end - chunk)) != static_cast<ssize_t>(chunk))
      fail("cannot read", file);
    auto i = chunk;
    while (i > 0 && buf[i - 1] != '\n')
      --i;
    found = i > 0;
    end = end - chunk + i;
  }
  if (::ftruncate(fd, static_cast<off_t>(end)) != 0 || ::fdatasync(fd) != 0)
    fail("cannot cut the partial last line of", file);
  return end;
}

namespace {

// The index of `<name>-<digits>.ndjson` (fewer than 10 digits), or 0 with `name` empty.
unsigned index_of(const std::string& file, std::string& name) {
  name.clear();
  constexpr std::string_view ext = ".ndjson";
  const auto dash = file.rfind('-');
  if (dash == std::string::npos || file.size() < dash + 1 + ext.size()
      || file.compare(file.size() - ext.size(), ext.size(), ext) != 0)
    return 0;
  auto digits = file.substr(dash + 1, file.size() - dash - 1 - ext.size());
  if (digits.empty() || digits.size() >= 10
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  name = file.substr(0, dash);
  return static_cast<unsigned>(std::stoul(digits));
}

} // namespace

file_listing::file_listing(fs::path dir, std::chrono::steady_clock::duration max_age)
  : dir_(std::move(dir)), max_age_(max_age) {
  // nop
}

std::optional<std::vector<unsigned>> file_listing::take(const std::string& name) {
  std::lock_guard<std::mutex> guard{mu_};
  if (listings_ == 0) {
    ++listings_;
    listed_at_ = std::chrono::steady_clock::now();
    std::error_code ec;
    std::string shard;
    for (auto& entry : fs::directory_iterator(dir_, ec))
      if (auto index = index_of(entry.path().filename().string(), shard); index > 0)
        files_[shard].push_back(index);
  }
  if (!taken_.insert(name).second || std::chrono::steady_clock::now() - listed_at_ > max_age_)
    return std::nullopt;
  std::vector<unsigned> result;
  if (auto i = files_.find(name); i != files_.end()) {
    result = std::move(i->second);
    files_.erase(i);
  }
  return result;
}

std::size_t file_listing::listings() const {
  std::lock_guard<std::mutex> guard{mu_};
  return listings_;
}

file_sink::file_sink(const shard_id& id, file_flusher_config cfg, file_listing* listing)
  : id_(id), name_(file_name_of(id)), cfg_(std::move(cfg)) {
  std::error_code ec;
  fs::create_directories(cfg_.dir, ec);
  if (ec)
    throw error{errc::io_failed, fmt::format("cannot create the output directory {}: {}",
                                             cfg_.dir.string(), ec.message())};
  auto listed = listing != nullptr ? listing->take(name_) : std::nullopt;
  auto indexes = listed ? std::move(*listed) : own_files();
  unsigned newest = 0;
  for (auto index : indexes)
    newest = std::max(newest, index);
  if (listed) {
    // Files made since the listing (by another writer of this shard) follow the newest one.
    for (unsigned tries = 0; tries < 100'000 && fs::exists(path_of(newest + 1), ec); ++tries)
      indexes.push_back(++newest);
  }
  for (auto index : indexes)
    repair(index);
  open_first(newest);
}

std::vector<unsigned> file_sink::own_files() const {
  std::vector<unsigned> result;
  std::error_code ec;
  std::string shard;
  for (auto& entry : fs::directory_iterator(cfg_.dir, ec))
    if (auto index = index_of(entry.path().filename().string(), shard); index > 0 && shard == name_)
      result.push_back(index);
  return result;
}

file_sink::~file_sink() {
  if (fd_ >= 0)
    ::close(fd_); // releases the lock
}

fs::path file_sink::path_of(unsigned index) const {
  return cfg_.dir / fmt::format("{}-{:06}.ndjson", name_, index);
}

int file_sink::try_lock(unsigned index, bool create) {
  const auto path = path_of(index);
  const int flags = O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if ((create && errno == EEXIST) || (!create && errno == ENOENT))
      return -1; // another writer created it first, or it went away: take the next
    fail("cannot open", path);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
    return fd;
  const int saved = errno;
  ::close(fd);
  if (saved != EWOULDBLOCK) {
    errno = saved;
    fail("cannot lock", path);
  }
  return -1; // a live writer holds it
}

void file_sink::repair(unsigned index) {
  // Two incarnations that died together leave a torn line in each of their files, not only in the
  // newest. The lock comes first: a size read without it may be a live writer's half-done write,
  // completed and synced by the time the lock is free (a writer that rolls or ends releases it).
  const auto path = path_of(index);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return; // gone since the listing; nothing to repair
  struct stat st {};
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &st) == 0 && st.st_size > 0) {
    try {
      cut_partial_line(fd, static_cast<std::uint64_t>(st.st_size), path);
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  ::close(fd);
}

void file_sink::open_first(unsigned newest) {
  if (newest > 0) {
    if (const int fd = try_lock(newest, false); fd >= 0) {
      adopt(fd, newest, false);
      return;
    }
  }
  index_ = newest;
  roll();
}

void file_sink::roll() {
  // Bounded: every failed attempt means another writer took that index (at most one per writer).
  for (unsigned next = index_ + 1, tries = 0; tries < 100'000; ++next, ++tries) {
    if (const int fd = try_lock(next, true); fd >= 0) {
      adopt(fd, next, true);
      return;
    }
  }
  throw error{errc::io_failed, fmt::format("cannot start a new file for shard {} in {}: 100000 "
                                           "indexes taken by other writers",
                                           id_, cfg_.dir.string())};
}

void file_sink::adopt(int fd, unsigned index, bool created) {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
  index_ = index;
  path_ = path_of(index);
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    fail("cannot stat", path_);
  // We hold the lock: a partial last line is a dead writer's (none of its records were reported
  // durable), so cut it off rather than glue the next record to it.
  size_ = cut_partial_line(fd_, static_cast<std::uint64_t>(st.st_size), path_);
  if (created && cfg_.sync) {
    // The new file's name must be durable before any of its records count as such.
    int dir = ::open(cfg_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || ::fsync(dir) != 0)
      fail("cannot sync the directory of", path_);
    ::close(dir);
  }
  opened_ = std::chrono::system_clock::now();
}

void file_sink::append(std::string& batch, const stream_record& x) {
  append_line(batch, x);
}

void file_sink::write(const std::string& batch, std::size_t) {
  if (batch.empty())
    return;
  if (!write_all(fd_, batch.data(), batch.size())) {
    const int saved = errno;
    // Cut what part of the batch got out (the lock makes size_ exact), so the file ends in a whole
    // line whatever comes next.
    auto ignored = ::ftruncate(fd_, static_cast<off_t>(size_));
    (void) ignored;
    errno = saved;
    fail("cannot write", path_);
  }
  if (cfg_.sync && ::fdatasync(fd_) != 0) {
    // Not durable: cut it too (the header's promise), so a replay does not find it written twice.
    const int saved = errno;
    auto ignored = ::ftruncate(fd_, static_cast<off_t>(size_));
    (void) ignored;
    errno = saved;
    fail("cannot sync", path_);
  }
  size_ += batch.size();
  const bool too_big = cfg_.roll_bytes > 0 && size_ >= cfg_.roll_bytes;
  const bool too_old = cfg_.roll_age.count() > 0
                       && std::chrono::system_clock::now() - opened_ >= cfg_.roll_age;
  if (too_big || too_old)
    roll();
}

bool file_sink::joins_batches() const noexcept {
  return true; // lines one after the other: two batches are one longer batch
}

// -- file_flusher --------------------------------------------------------------------------------

file_flusher::file_flusher(const shard_id& id, file_flusher_config cfg, file_listing* listing)
  : batch_records_(cfg.batch_records), sink_(id, std::move(cfg), listing) {
  buffer_.reserve(batch_records_ * 160);
  tokens_.reserve(batch_records_);
}

file_flusher::~file_flusher() {
  // nop
}

add_result file_flusher::add(const stream_record& x, flush_token token) {
  if (tokens_.size() >= batch_records_)
    return add_result::full;
  sink_.append(buffer_, x);
  tokens_.push_back(token);
  return add_result::added;
}

std::vector<flush_token> file_flusher::flush(flush_mode) {
  if (tokens_.empty())
    return {};
  sink_.write(buffer_, tokens_.size());
  buffer_.clear();
  std::vector<flush_token> result;
  result.reserve(batch_records_);
  result.swap(tokens_);
  return result;
}

std::vector<flush_token> file_flusher::heartbeat() {
  return {};
}

flusher_factory file_flusher::factory(file_flusher_config cfg) {
  auto listing = std::make_shared<file_listing>(cfg.dir);
  if (cfg.pool) {
    auto pool = cfg.pool;
    pooled_flusher_config p{cfg.batch_records, cfg.max_in_flight};
    cfg.pool.reset(); // the sinks need no reference to the pool
    auto sinks = [cfg, listing](const shard_id& id) {
      return std::make_unique<file_sink>(id, cfg, listing.get());
    };
    return pooled_flusher::factory(std::move(pool), std::move(sinks), p);
  }
  return [cfg, listing](const shard_id& id) {
    return std::make_unique<file_flusher>(id, cfg, listing.get());
  };
}

// -- stdout_flusher ------------------------------------------------------------------------------

stdout_flusher::stdout_flusher(std::size_t batch_records)
  : capacity_(std::max<std::size_t>(batch_records, 1)) {
  // nop
}

add_result stdout_flusher::add(const stream_record& x, flush_token token) {
  if (tokens_.size() >= capacity_)
    return add_result::full;
  append_line(buffer_, x);
  tokens_.push_back(token);
  return add_result::added;
}

std::vector<flush_token> stdout_flusher::flush(flush_mode) {
  static std::mutex stdout_mutex; // shards write whole batches, never interleaved
  if (tokens_.empty())
    return {};
  {
    std::lock_guard<std::mutex> guard{stdout_mutex};
    write_or_fail(STDOUT_FILENO, buffer_, "standard output");
  }
  buffer_.clear();
  std::vector<flush_token> result;
  result.swap(tokens_);
  return result;
}

std::vector<flush_token> stdout_flusher::heartbeat() {
  return {};
}

flusher_factory stdout_flusher::factory(std::size_t batch_records) {
  return
    [batch_records](const shard_id&) { return std::make_unique<stdout_flusher>(batch_records); };
}

} // namespace shardflow
