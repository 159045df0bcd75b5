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

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include <shardflow/actors/shard.hpp>

namespace CLI {
class App;
} // namespace CLI

namespace caf {
class actor_system_config;
} // namespace caf

namespace shardflow::cli {

/// The options of a job that `run` and `kafka run` share: batches, intervals, restarts, the stop,
/// threads (each parsed later with the one parser of its kind).
struct job_options {
  std::size_t batch_size = 1000;
  std::string flush_interval = "1s";
  std::string checkpoint_interval = "1s";
  std::string heartbeat_interval = "1s";
  std::string watchdog = "0";
  int intensity = 10;
  // A short outage (ENOSPC, EACCES) is waited out for about 25 s (10 restarts, 100 ms doubling to
  // 4 s, with jitter); a shard failing for longer gives up, so a job never retries for ever.
  std::string period = "60s";
  std::string backoff_min = "100ms";
  std::string backoff_max = "4s";
  std::string stop_timeout = "30s";
  // Twice the cores, at least 8: a shard whose flush blocks (fdatasync, an I/O pool at its
  // in-flight limit, a Kafka flusher at its cap) holds its thread meanwhile, so with one thread a
  // core the shards ran in waves: 4 file-flusher shards on 2 cores took 2x as long as with 8
  // threads, and a shard started only when an earlier one had finished.
  std::size_t threads = std::max(8u, 2 * std::thread::hardware_concurrency());
  // Messages an actor handles before its thread goes to the next one (CAF's
  // scheduler.max-throughput, unbounded by default: a shard with a full mailbox then kept its
  // thread, so with more shards than threads later shards, the runtime's front actor and a signal
  // waited for earlier shards to finish).
  std::size_t max_throughput = 100;
  // Polls an idle CAF thread makes 50 us apart before it waits on its condition variable (CAF's
  // work-stealing.moderate-poll-attempts, 500 by default: 25 ms of polling). With twice as many
  // threads as cores, the idle ones' sleeps and wake-ups took the busy ones' CPU: on the `run`
  // row (4 shards, 2 cores) 14,000-17,000 voluntary context switches and 0.72 CPU seconds with
  // 500, about 6,500 and 0.60 s with 20 (1 ms of polling, stealing every 5th).
  std::size_t idle_polls = 20;
};

/// Returns a shard group's batches, intervals, restarts and backoff from `opts`, checked: a usage
/// error names the option (a period under 1 s, restarts that cannot fit into the period, a watchdog
/// no longer than the flush interval).
shard_group_config plan_job_shards(const job_options& opts);

/// Returns the configuration of a job's actor system: shardflow's error category, `opts.threads`
/// scheduler threads taking turns after `opts.max_throughput` messages and polling
/// `opts.idle_polls` times when idle, CAF's own logger quiet (the command logs through cli_log).
std::unique_ptr<caf::actor_system_config> system_config_of(const job_options& opts);

/// Registers the options of `job_options` on `cmd`.
void add_job_options(CLI::App* cmd, job_options* opts);

/// Registers `run` on `app`.
void add_run_command(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
