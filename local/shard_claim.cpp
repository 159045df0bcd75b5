#include <shardflow/local/shard_claim.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/write_all.hpp>

namespace fs = std::filesystem;

namespace shardflow::local {

namespace {

// The owner's text, written into a lock file it holds: "pid 42\nhost h\nsince 2026-...Z\n".
std::string owner_text() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0)
    std::strcpy(host, "?");
  const auto now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char since[32] = {};
  std::strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return fmt::format("pid {}\nhost {}\nsince {}\n", ::getpid(), host, since);
}

// Returns the value of `key` in an owner text, or "" when it is not there.
std::string field(const std::string& text, const std::string& key) {
  const auto lines = '\n' + text;
  const auto at = lines.find('\n' + key + ' ');
  if (at == std::string::npos)
    return {};
  const auto begin = at + key.size() + 2;
  return lines.substr(begin, lines.find('\n', begin) - begin);
}

// Describes the owner of a lock file that is held elsewhere, from what it wrote there.
std::string owner_of(int fd) {
  std::string text(512, '\0');
  const auto n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  const auto pid = field(text, "pid");
  if (pid.empty())
    return "another process (it has not written its pid yet)";
  auto result = fmt::format("pid {}", pid);
  if (const auto host = field(text, "host"); !host.empty())
    result += fmt::format(" on {}", host);
  if (const auto since = field(text, "since"); !since.empty())
    result += fmt::format(", claimed at {}", since);
  return result;
}

[[noreturn]] void owned(const stream_dir& stream, std::size_t shard, const std::string& owner) {
  throw error{errc::shard_owned,
              fmt::format("{} of the stream {} is owned by another run: {} is locked by {}; stop "
                          "that run first, or run on other shards (--shards); the lock goes "
                          "with its process, so a rerun after it ended takes over at once",
                          shard_name(shard), stream.dir().string(),
                          claim_file(stream, shard).string(), owner)};
}

[[noreturn]] void claim_failed(const std::string& what, const fs::path& file) {
  const int why = errno;
  throw error{errc::io_failed,
              fmt::format("cannot claim a shard: cannot {} {}: {}{}", what, file.string(),
                          std::strerror(why),
                          why == EMFILE ? " (each shard of a run holds its lock and its files "
                                          "open: raise the limit, e.g. `ulimit -n 65536`, or run "
                                          "fewer shards at once with --shards)"
                                        : "")};
}

// Takes the lock of one shard; returns its descriptor, or throws (closing it).
int lock_one(const stream_dir& stream, std::size_t shard, const std::string& owner) {
  const auto file = claim_file(stream, shard);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    claim_failed("create", file);
  int rc = 0;
  while ((rc = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
    continue;
  if (rc != 0) {
    const int why = errno;
    const auto owner_now = why == EWOULDBLOCK ? owner_of(fd) : std::string{};
    ::close(fd);
    if (why == EWOULDBLOCK)
      owned(stream, shard, owner_now);
    errno = why;
    claim_failed("lock", file);
  }
  // The text only names the owner for a refused claim; the lock holds without it.
  if (::ftruncate(fd, 0) == 0)
    static_cast<void>(write_all(fd, owner.data(), owner.size()));
  return fd;
}

} // namespace

fs::path claim_file(const stream_dir& stream, std::size_t i) {
  return stream.dir() / (shard_name(i) + ".lock");
}

shard_claims shard_claims::claim(const stream_dir& stream, const std::vector<std::size_t>& shards) {
  auto wanted = shards;
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  if (!wanted.empty() && wanted.back() >= stream.shards())
    throw error{errc::bad_input,
                fmt::format("cannot claim shard {}: the stream {} has {} shards", wanted.back(),
                            stream.dir().string(), stream.shards())};
  const auto owner = owner_text();
  shard_claims result; // releases what it took when a later shard throws
  for (auto shard : wanted) {
    result.fds_.push_back(lock_one(stream, shard, owner));
    result.shards_.push_back(shard);
  }
  return result;
}

shard_claims::~shard_claims() {
  release();
}

shard_claims::shard_claims(shard_claims&& other) noexcept
  : shards_(std::move(other.shards_)), fds_(std::move(other.fds_)) {
  other.shards_.clear();
  other.fds_.clear();
}

shard_claims& shard_claims::operator=(shard_claims&& other) noexcept {
  if (this != &other) {
    release();
    shards_.swap(other.shards_);
    fds_.swap(other.fds_);
  }
  return *this;
}

void shard_claims::release() noexcept {
  for (auto fd : fds_) {
    if (::ftruncate(fd, 0) != 0) {
      // the owner text is advisory: a stale one is ignored once the lock is free
    }
    ::close(fd);
  }
  fds_.clear();
  shards_.clear();
}

} // namespace shardflow::local
