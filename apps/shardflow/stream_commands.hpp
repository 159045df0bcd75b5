// apps/shardflow/stream_commands.hpp - `shardflow put` and `shardflow generate`: writing local streams.
#pragma once

#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Registers `put` (append NDJSON or text lines to a local stream) on `app`.
void add_put_command(CLI::App& app, int& exit_code);

/// Registers `generate` (write a synthetic local stream) on `app`.
void add_generate_command(CLI::App& app, int& exit_code);

/// Checks an input of a command that reads lines (`path` empty or "-": standard input) as `put`
/// does: a path that does not exist is bad input (exit 3), one that cannot be read, such as a
/// directory, fails (exit 1), each naming the path and why (an istream reads a directory as empty).
/// @throws shardflow::error
void check_input(const std::string& path);

} // namespace shardflow::cli
