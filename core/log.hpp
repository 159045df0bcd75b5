// core/log.hpp - one log sink for the whole library: a level and a line of text.
//
// Library code never prints by itself: the runtime (actors/runtime.hpp), the MLD worker and server
// (kcl/) take a `log_sink` in their config and send every line there. The default, `stderr_log`,
// writes one line per call to standard error, `2026-12-01T21:54:03.120Z warning PROGRAM: MESSAGE`
// (UTC, milliseconds), with one write(2) each, so the lines of concurrent threads never interleave.
// A host routes the lines into its own logging by passing its own sink.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace shardflow {

/// How much a log line matters.
enum class log_level : std::uint8_t {
  debug,   // details for whoever debugs shardflow
  info,    // the course of things: a session initialized, a retry
  warning, // something was set aside or refused, and the work goes on
  error,   // a shard, a session or the runtime failed
};

/// Returns "debug", "info", "warning" or "error".
const char* to_string(log_level x) noexcept;

/// Where log lines go: one call per line, without a trailing newline. It may be called from several
/// threads at once (actor threads, session threads): it must be thread-safe and must not block long.
using log_sink = std::function<void(log_level, std::string_view)>;

/// Returns the default sink: standard error, one line per call (see the file comment).
log_sink stderr_log(std::string program);

/// Returns the line `stderr_log(program)` writes for `message` at `level` at time `at`, without the
/// newline.
std::string log_line(std::chrono::system_clock::time_point at, log_level level,
                     std::string_view program, std::string_view message);

} // namespace shardflow
