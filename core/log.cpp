#include <shardflow/core/log.hpp>

#include <cctype>
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

namespace {

// "2026-12-01T21:54:03.120Z" (UTC, milliseconds).
std::string timestamp(std::chrono::system_clock::time_point at) {
  const auto since_epoch = at.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs);
  const auto t = static_cast<std::time_t>(secs.count());
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", stamp, ms.count());
}

// One write per line (retried on EINTR and short writes), so lines of threads never interleave.
void write_stderr_line(std::string line) {
  line += '\n';
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
}

bool is_name_char(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

} // namespace

std::string log_line(std::chrono::system_clock::time_point at, log_level level,
                     std::string_view program, std::string_view message) {
  return fmt::format("{} {} {}: {}", timestamp(at), to_string(level), program, message);
}

shard_message split_shard(std::string_view message) noexcept {
  const auto colon = message.find(": ");
  if (colon == std::string_view::npos)
    return {{}, message};
  const auto id = message.substr(0, colon);
  const auto dash = id.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size())
    return {{}, message};
  for (std::size_t i = 0; i < dash; ++i)
    if (!is_name_char(id[i]) && id[i] != '-')
      return {{}, message};
  for (std::size_t i = dash + 1; i < id.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(id[i])))
      return {{}, message};
  return {id, message.substr(colon + 2)};
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::string log_json_line(std::chrono::system_clock::time_point at, log_level level,
                          std::string_view message) {
  const auto m = split_shard(message);
  const auto shard = m.shard.empty() ? std::string{}
                                     : fmt::format(",\"shard\":\"{}\"", json_escape(m.shard));
  return fmt::format("{{\"time\":\"{}\",\"level\":\"{}\"{},\"message\":\"{}\"}}", timestamp(at),
                     to_string(level), shard, json_escape(m.text));
}

log_sink stderr_log(std::string program) {
  return [program = std::move(program)](log_level level, std::string_view message) {
    write_stderr_line(log_line(std::chrono::system_clock::now(), level, program, message));
  };
}

log_sink stderr_json_log() {
  return [](log_level level, std::string_view message) {
    write_stderr_line(log_json_line(std::chrono::system_clock::now(), level, message));
  };
}

log_sink at_least(log_level min, log_sink inner) {
  return [min, inner = std::move(inner)](log_level level, std::string_view message) {
    if (level >= min)
      inner(level, message);
  };
}

} // namespace shardflow
