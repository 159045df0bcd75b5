#include "flushers/file_flusher.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "flushers/error.hpp"
#include "flushers/record_line.hpp"
#include "flushers/write_all.hpp"

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

file_flusher::file_flusher(const shard_id& id, file_flusher_config cfg)
  : id_(id), cfg_(std::move(cfg)) {
  std::error_code ec;
  fs::create_directories(cfg_.dir, ec);
  if (ec)
    throw error{errc::io_failed,
                fmt::format("cannot create the output directory {}: {}", cfg_.dir.string(),
                            ec.message())};
  // Continue the newest file of this shard.
  unsigned newest = 1;
  const auto prefix = id_ + "-";
  for (auto& entry : fs::directory_iterator(cfg_.dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && entry.path().extension() == ".ndjson") {
      auto digits = name.substr(prefix.size(), name.size() - prefix.size() - 7);
      if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos)
        newest = std::max(newest, static_cast<unsigned>(std::stoul(digits)));
    }
  }
  buffer_.reserve(cfg_.batch_records * 160);
  tokens_.reserve(cfg_.batch_records);
  open_file(newest);
}

file_flusher::~file_flusher() {
  if (fd_ >= 0)
    ::close(fd_);
}

void file_flusher::open_file(unsigned index) {
  if (fd_ >= 0)
    ::close(fd_);
  index_ = index;
  path_ = cfg_.dir / fmt::format("{}-{:06}.ndjson", id_, index_);
  std::error_code ec;
  const bool existed = fs::exists(path_, ec);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    fail("cannot open", path_);
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (size_ > 0)
    drop_torn_line();
  if (!existed && cfg_.sync) {
    // The new file's name must be durable before any of its records count as such.
    int dir = ::open(cfg_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || ::fsync(dir) != 0)
      fail("cannot sync the directory of", path_);
    ::close(dir);
  }
  opened_ = std::chrono::system_clock::now();
}

void file_flusher::drop_torn_line() {
  // A crash in the middle of a write can leave a partial last line; none of its records were
  // reported durable, so cut it off rather than glue the next record to it.
  char last = '\n';
  if (::pread(fd_, &last, 1, static_cast<off_t>(size_ - 1)) != 1 || last == '\n')
    return;
  std::uint64_t end = size_;
  char buf[4096];
  while (end > 0) {
    const auto chunk = std::min<std::uint64_t>(sizeof buf, end);
    if (::pread(fd_, buf, chunk, static_cast<off_t>(end - chunk)) != static_cast<ssize_t>(chunk))
      fail("cannot read", path_);
    for (auto i = chunk; i-- > 0;) {
      if (buf[i] == '\n') {
        end = end - chunk + i + 1;
        goto found;
      }
    }
    end -= chunk;
  }
found:
  if (::ftruncate(fd_, static_cast<off_t>(end)) != 0 || ::fdatasync(fd_) != 0)
    fail("cannot cut the torn last line of", path_);
  size_ = end;
}

add_result file_flusher::add(const stream_record& x, flush_token token) {
  if (tokens_.size() >= cfg_.batch_records)
    return add_result::full;
  append_line(buffer_, x);
  tokens_.push_back(token);
  return add_result::added;
}

std::vector<flush_token> file_flusher::flush(flush_mode) {
  if (tokens_.empty())
    return {};
  write_or_fail(fd_, buffer_, path_);
  if (cfg_.sync && ::fdatasync(fd_) != 0)
    fail("cannot sync", path_);
  size_ += buffer_.size();
  buffer_.clear();
  std::vector<flush_token> result;
  result.reserve(cfg_.batch_records);
  result.swap(tokens_);
  const bool too_big = cfg_.roll_bytes > 0 && size_ >= cfg_.roll_bytes;
  const bool too_old = cfg_.roll_age.count() > 0
                       && std::chrono::system_clock::now() - opened_ >= cfg_.roll_age;
  if (too_big || too_old)
    open_file(index_ + 1);
  return result;
}

std::vector<flush_token> file_flusher::heartbeat() {
  return {};
}

flusher_factory file_flusher::factory(file_flusher_config cfg) {
  return [cfg](const shard_id& id) { return std::make_unique<file_flusher>(id, cfg); };
}

// -- stdout_flusher ------------------------------------------------------------------------------

stdout_flusher::stdout_flusher(std::size_t batch_records) : capacity_(std::max<std::size_t>(batch_records, 1)) {
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
  return [batch_records](const shard_id&) { return std::make_unique<stdout_flusher>(batch_records); };
}

} // namespace shardflow
