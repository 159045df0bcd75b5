// core/log.hpp - one log sink for the whole library: a level and a line of text.
//
// Library code never prints by itself: the runtime (actors/runtime.hpp), the MLD worker and server
// (kcl/) take a `log_sink` in their config and send every line there. The default, `stderr_log`,
// writes one line per call to standard error, `2026-12-01T21:54:03.120Z warning PROGRAM: MESSAGE`
// (UTC, milliseconds), with one write(2) each, so the lines of concurrent threads never interleave.
// `stderr_json_log` writes the same lines as one JSON object each, and `at_least` drops the lines
// below a level. A host routes the lines into its own logging by passing its own sink.
//
// A line about one shard starts with the shard's id and ": " (`shard-00001: flushed`, the
// convention of every caller in the library); `split_shard` takes that id back out, so a structured
// sink can put it in a field of its own without any caller changing.
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

/// Returns a sink that writes each line to standard error as one JSON object (`log_json_line`).
log_sink stderr_json_log();

/// Returns a sink that passes the lines at `min` or above to `inner` and drops the others.
log_sink at_least(log_level min, log_sink inner);

/// Returns the line `stderr_log(program)` writes for `message` at `level` at time `at`, without the
/// newline.
std::string log_line(std::chrono::system_clock::time_point at, log_level level,
                     std::string_view program, std::string_view message);

/// A log message split into the shard it is about (empty when none) and the rest.
struct shard_message {
  std::string_view shard;
  std::string_view text;
};

/// Splits `message` at a leading shard id followed by ": ". A shard id here is a name, a dash and
/// digits (`shard-00001`, `shardId-000000000001`, `session-3`); any other message is about no shard.
shard_message split_shard(std::string_view message) noexcept;

/// Returns the JSON object `stderr_json_log` writes for `message`, without the newline:
/// {"time":"2026-12-01T21:54:03.120Z","level":"warning","shard":"shard-00001","message":"..."}
/// ("shard" only when `split_shard` finds one).
std::string log_json_line(std::chrono::system_clock::time_point at, log_level level,
                          std::string_view message);

/// Returns `text` as the body of a JSON string: `"`, `\` and control characters escaped.
std::string json_escape(std::string_view text);

} // namespace shardflow
