// apps/shardflow/cli_log.hpp - the command's log: where its lines and the library's lines go, at
// which level and in which format, chosen once by the global --log-level and --log-format.
//
// main.cpp registers the options (`add_log_options`); CLI11 sets them before any subcommand's
// callback runs, so a command reads the choice when it starts: `cli_log()` is the sink to hand to
// the library (runtime_config::log, mld::worker_config::log, ...), `say()` writes the command's own
// messages through it. Text lines are `TIME LEVEL PROGRAM: MESSAGE` (core/log.hpp's log_line);
// JSON lines are one object each, {"time","level","shard","message"}, "shard" when the message
// starts with a shard id and ": " (core/log.hpp's split_shard). Both go to standard error; lines
// below the level are dropped.
//
// Threads: the choice is written while the command line is parsed, before the command starts any
// thread; the sinks may then be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <shardflow/core/log.hpp>

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// How the command's log lines are written.
enum class log_format : std::uint8_t { text, json };

/// The log's settings: the defaults are the command's without --log-level or --log-format.
struct cli_log_config {
  log_level level = log_level::info;
  log_format format = log_format::text;
  /// The program in text lines: "shardflow", or "shardflow COMMAND" once a command runs.
  std::string program = "shardflow";
};

/// Registers --log-level and --log-format on `app` (the top-level app: they are global).
void add_log_options(CLI::App& app);

/// Sets the log's settings (main.cpp and tests; add_log_options does it from the options).
void set_cli_log(cli_log_config cfg);

/// Sets the program named in text lines (main.cpp sets "shardflow COMMAND" as a command starts).
void set_cli_program(std::string program);

/// Returns the log's settings.
cli_log_config cli_log_settings();

/// Returns the configured sink: the level filter, then text or JSON lines on standard error.
log_sink cli_log();

/// Writes the command's own `message` at `level` through `cli_log()`.
void say(log_level level, std::string_view message);

/// Writes the command's own message, formatted with fmt, at `level` through `cli_log()`.
template <class... Ts>
void say(log_level level, fmt::format_string<Ts...> text, Ts&&... xs) {
  say(level, std::string_view{fmt::format(text, std::forward<Ts>(xs)...)});
}

/// Returns "1 record", "2 records", "0 records": `n` and `one` (n == 1) or `many` (else; when
/// empty, `one` + "s").
std::string plural(std::uint64_t n, std::string_view one, std::string_view many = {});

} // namespace shardflow::cli
