// apps/shardflow/stream_commands.hpp - `shardflow put` and `shardflow generate`: writing local streams.
#pragma once

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Registers `put` (append NDJSON or text lines to a local stream) on `app`.
void add_put_command(CLI::App& app, int& exit_code);

/// Registers `generate` (write a synthetic local stream) on `app`.
void add_generate_command(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
