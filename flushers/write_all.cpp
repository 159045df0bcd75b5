#include <shardflow/flushers/write_all.hpp>

#include <cerrno>

#include <unistd.h>

namespace shardflow {

bool write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const auto n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

} // namespace shardflow
