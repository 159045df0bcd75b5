// apps/shardflow/run_report.hpp - what `shardflow run` tells its user: a live progress line (or a
// log line every few seconds), a summary table, a JSON summary, Prometheus metrics and readiness.
// Each shard's state says what its life came to: ended (its end checkpointed), stopped at
// FILE:LINE (reason) (bad or incomplete input), stopped (a signal), gave up, not started (a signal
// came before the run started it: every planned shard has a row).
//
// The report reads only host-side data: each shard's flusher meter (flushers/metered_flusher.hpp)
// and the runtime's meters of the shard (core/shard_meters.hpp: acknowledged checkpoint, restarts,
// outcome), so it never asks an actor anything, never opens the checkpoint database a second time,
// and costs the shards nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <shardflow/core/shard_meters.hpp>
#include <shardflow/flushers/metered_flusher.hpp>

namespace shardflow::cli {

/// One shard as the report sees it: a snapshot, refreshed by `update`.
struct shard_view {
  std::string id;
  std::shared_ptr<flusher_meter> meter;
  std::uint64_t input_bytes = 0;           // size of the shard file
  std::optional<std::uint64_t> checkpoint; // byte offset of the last checkpointed record
  bool ended = false;                      // the store has its end marker (see at_end)
  bool not_started = false;                // planned, but a stop came before the run started it
  std::uint64_t restart_count = 0;         // incarnations after the first, in this run
  std::uint64_t generation = 0;            // the incarnation running now; 0: not started yet
  shard_outcome outcome = shard_outcome::running;
  std::optional<std::string> stopped_at; // "FILE:LINE (reason)" of the input that stopped it
  std::chrono::steady_clock::time_point last_checkpoint_change;

  /// Restarts in this run.
  std::uint64_t restarts() const noexcept {
    return restart_count;
  }

  /// Whether the shard is at its end: the store has its end marker and this run did not stop it at
  /// bad input (an end marker of an earlier run does not make a shard stopped at a checkpoint
  /// beyond its truncated file one that ended).
  bool at_end() const noexcept {
    return ended && !stopped_at && !not_started;
  }

  /// Bytes of input after the checkpoint.
  std::uint64_t lag_bytes() const noexcept {
    if (at_end())
      return 0;
    const auto done = checkpoint ? *checkpoint : 0;
    return input_bytes > done ? input_bytes - done : 0;
  }

  /// Takes the checkpoint, end, restarts and outcome from the runtime's meters of the shard, read at
  /// `now` (the time the checkpoint last moved changes when the checkpoint does).
  void update(const shard_meters& m, std::chrono::steady_clock::time_point now);
};

/// Totals over all shards.
struct run_totals {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t flushes = 0;
  std::uint64_t flush_nanos = 0;
  std::uint64_t restarts = 0;
  std::uint64_t lag_bytes = 0;
  std::size_t ended = 0;
  std::size_t not_started = 0;
};

/// Adds up `shards`.
run_totals totals_of(const std::vector<shard_view>& shards);

/// Returns the live progress line (no newline): rates since the previous line, lag per shard at a
/// glance, restarts.
std::string progress_line(const std::vector<shard_view>& shards, const run_totals& now,
                          const run_totals& before, double seconds_since_before,
                          double seconds_total);

/// Returns what a shard's life came to, for the table: "ended", "stopped at FILE:LINE (reason)",
/// "stopped", "gave up", "not started" or "running".
std::string state_of(const shard_view& shard);

/// Returns the summary table printed at the end.
std::string summary_table(const std::vector<shard_view>& shards, double seconds, bool stopped,
                          std::uint64_t dead_letters);

/// Returns the summary as log messages (under `--log-format json`, where a table would break the
/// log's one object a line): one per shard ("ID: N records (BYTES), F flushes, checkpoint C, lag L,
/// R restarts; STATE"), then the table's last line.
std::vector<std::string> summary_messages(const std::vector<shard_view>& shards, double seconds,
                                          bool stopped, std::uint64_t dead_letters);

/// Returns the machine-readable summary. A shard's outcome is the runtime's ("ended", "stopped",
/// "gave_up"), or "not_started"; `stopped`: the run was stopped on a signal ("stopped_on_signal").
std::string summary_json(const std::vector<shard_view>& shards, double seconds, int exit_code,
                         const std::vector<std::string>& problems, std::uint64_t dead_letters,
                         bool stopped = false);

/// Returns the Prometheus text exposition of the shards.
std::string prometheus_text(const std::vector<shard_view>& shards);

/// Returns the `shardflow_build_info{version="..."} 1` metric (with its HELP and TYPE lines).
std::string build_info_text(const std::string& version);

/// Whether a run is ready (/readyz), and a short line saying why or why not.
struct readiness {
  bool ready = false;
  std::string why;
};

/// Ready once every shard started (an incarnation ran) and none gave up.
readiness readiness_of(const std::vector<shard_view>& shards);

/// Whether `--bad-input dead-letter` would have let a shard stopped at `where` (stop_of's
/// "FILE:LINE (reason)") go on: a malformed or over-long line, not an incomplete last line nor a
/// problem of the file as a whole ("FILE (reason)": truncated, a checkpoint beyond its end).
bool dead_letter_applies(const std::string& where);

/// Returns `line` cut to at most `columns` characters (UTF-8 code points, each one column wide as
/// every character of a progress line is): at the last field gap (two spaces) that fits, if there
/// is one, so that no field is cut mid-word; `columns` 0 leaves it whole.
std::string cut_to_columns(const std::string& line, std::size_t columns);

} // namespace shardflow::cli
