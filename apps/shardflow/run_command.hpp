// apps/shardflow/run_command.hpp - `shardflow run`: process a local stream with the full runtime.
//
// One shard group per shard file (feeder over a file source, shard actor with the chosen flusher),
// checkpoints in SQLite, a live progress line, a summary, optional Prometheus metrics. Stdout carries
// the data alone (--flusher stdout): the progress line and the summary table go to stderr, the JSON
// summary to the file --json names (or to stdout with `--json -`, unless the flusher is stdout).
// The shards are claimed first (local/shard_claim.hpp: a second run on one of them exits 4). SIGINT
// or SIGTERM stops gracefully (every shard stops feeding, flushes what it holds and checkpoints); a
// second signal, or a graceful stop longer than --stop-timeout, stops at once (exit 130). A shard
// that gives up is isolated: the others finish, then the run exits 1 naming it.
#pragma once

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Registers `run` on `app`.
void add_run_command(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
