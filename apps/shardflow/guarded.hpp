// apps/shardflow/guarded.hpp - how every command turns an exception into a message and an exit code.
//
// A command's body runs inside `guarded`: a CLI::ValidationError (a bad option value found while
// planning) is a usage error (2); a shardflow::error exits with `exit_code_of` its code; any other
// exception is a failure (1). A usage error goes to stderr as "shardflow COMMAND: what", plain like
// CLI11's own; a failure is an error line of the command's log (apps/shardflow/cli_log.hpp: with a
// time and a level, or a JSON object under --log-format json). `checked`
// takes the value of a parse result (apps/shardflow/options.hpp) or makes its reason a usage error.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/options.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/core/result.hpp>

namespace shardflow::cli {

/// Signals a bad option value found after parsing (exit code 2 under `guarded`).
[[noreturn]] inline void usage(const std::string& what) {
  throw CLI::ValidationError(what);
}

/// Returns the value of `r`, or signals its reason as a usage error.
template <class T>
T checked(result<T> r) {
  if (!r)
    usage(r.error());
  return std::move(*r);
}

/// Returns the value of duration option `option` (the one duration parser, `parse_duration`), or
/// signals a usage error naming it.
inline std::chrono::milliseconds duration_option(const std::string& option,
                                                 const std::string& text) {
  return checked(parse_duration(option, text));
}

/// Adds the duration option `name` (parsed later by `duration_option`): its help ends with the
/// units (a bare number is seconds), its type reads DURATION.
inline CLI::Option* add_duration(CLI::App* cmd, const char* name, std::string& value,
                                 const std::string& help) {
  return cmd->add_option(name, value, help + duration_help)->type_name("DURATION");
}

/// Adds `--json [FILE]`: the JSON summary into FILE, `-` or a bare --json for stdout; off when not
/// given (`value` stays empty). `help` says what the summary is.
inline CLI::Option* add_json_summary(CLI::App* cmd, std::string& value, const std::string& help) {
  return cmd->add_option("--json", value, help)
    ->type_name("FILE")
    ->expected(0, 1)
    ->default_str("-") // what a bare --json means
    ->option_text("[FILE] (default: off; a bare --json: stdout)");
}

/// Runs `body` (returning an exit code) and maps what it throws to an exit code; see the file
/// comment.
template <class F>
int guarded(const char* command, F&& body) {
  try {
    return body();
  } catch (const CLI::ValidationError& e) {
    fmt::print(stderr, "shardflow {}: {}\n", command, e.what());
    return exit_usage;
  } catch (const error& e) {
    say(log_level::error, e.what());
    return exit_code_of(e);
  } catch (const std::exception& e) {
    say(log_level::error, e.what());
    return exit_failed;
  }
}

} // namespace shardflow::cli
