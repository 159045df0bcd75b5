// apps/shardflow/run_command.hpp - `shardflow run`: process a local stream with the full runtime.
//
// One shard group per shard file (feeder over a file source, shard actor with the chosen flusher),
// checkpoints in SQLite, a live progress line, a summary, optional Prometheus metrics. Stdout carries
// the data alone (--flusher stdout): the progress line and the summary table go to stderr, the JSON
// summary to the file --json names (or to stdout with `--json -`, unless the flusher is stdout).
// SIGINT or SIGTERM stops gracefully (every shard flushes fully and checkpoints); a second signal
// stops at once.
#pragma once

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Registers `run` on `app`.
void add_run_command(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
