#include <shardflow/flushers/dead_letter_file.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/flushers/write_all.hpp>

namespace fs = std::filesystem;

namespace shardflow {

namespace {

[[noreturn]] void fail(const char* what, const fs::path& file) {
  throw error{errc::io_failed, fmt::format("{} the dead-letter file {}: {}", what, file.string(),
                                           std::strerror(errno))};
}

} // namespace

dead_letter_file::dead_letter_file(fs::path dir, const shard_id& shard)
  : dir_(std::move(dir)), name_(file_name_of(shard)) {
  // nop
}

dead_letter_file::~dead_letter_file() {
  if (fd_ >= 0)
    ::close(fd_); // releases the lock
}

void dead_letter_file::open() {
  std::error_code ec;
  fs::create_directories(dir_, ec); // if it fails, open says why
  // Bounded: every index passed over is held by another live writer of this shard.
  for (int n = 1; n <= 1000; ++n) {
    path_ = dir_ / (n == 1 ? name_ + ".ndjson" : fmt::format("{}.{}.ndjson", name_, n));
    const bool existed = fs::exists(path_, ec);
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
      fail("cannot open", path_);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      if (saved == EWOULDBLOCK)
        continue;
      fail("cannot lock", path_);
    }
    fd_ = fd;
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
      fail("cannot stat", path_);
    cut_partial_line(fd_, static_cast<std::uint64_t>(st.st_size), path_);
    if (!existed) {
      // The new file's name must be durable before its lines count as set aside.
      const int d = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (d < 0 || ::fsync(d) != 0)
        fail("cannot sync the directory of", path_);
      ::close(d);
    }
    return;
  }
  errno = EBUSY;
  fail("cannot open (1000 live writers?)", path_);
}

void dead_letter_file::write(std::string_view bytes) {
  if (fd_ < 0)
    open();
  if (!write_all(fd_, bytes.data(), bytes.size())) {
    const int saved = errno;
    struct stat st {};
    if (::fstat(fd_, &st) == 0) {
      try {
        cut_partial_line(fd_, static_cast<std::uint64_t>(st.st_size), path_);
      } catch (const error&) {
        // the write's own failure is the one to report
      }
    }
    errno = saved;
    fail("cannot write", path_);
  }
}

void dead_letter_file::sync() {
  if (fd_ >= 0 && ::fdatasync(fd_) != 0)
    fail("cannot sync", path_);
}

} // namespace shardflow
