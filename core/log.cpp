#include <shardflow/core/log.hpp>

#include <cerrno>
#include <ctime>

#include <unistd.h>

#include <fmt/format.h>

namespace shardflow {

const char* to_string(log_level x) noexcept {
  switch (x) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warning:
      return "warning";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

std::string log_line(std::chrono::system_clock::time_point at, log_level level,
                     std::string_view program, std::string_view message) {
  const auto since_epoch = at.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs);
  const auto t = static_cast<std::time_t>(secs.count());
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z {} {}: {}", stamp, ms.count(), to_string(level), program, message);
}

log_sink stderr_log(std::string program) {
  return [program = std::move(program)](log_level level, std::string_view message) {
    const auto line = log_line(std::chrono::system_clock::now(), level, program, message) + "\n";
    // One write per line (retried on EINTR and short writes), so lines of threads never interleave.
    const char* p = line.data();
    std::size_t n = line.size();
    while (n > 0) {
      auto k = ::write(STDERR_FILENO, p, n);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        return; // stderr is gone: nowhere left to say so
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  };
}

} // namespace shardflow
