// apps/shardflow/run_report.hpp - what `shardflow run` tells its user: a live progress line (or a
// log line every few seconds), a summary table, a JSON summary and Prometheus metrics.
//
// The report reads only host-side data: each shard's flusher meter (flushers/metered_flusher.hpp)
// and the checkpoint rows of the SQLite store (through a connection of its own), so it never asks an
// actor anything and costs the shards nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <shardflow/flushers/metered_flusher.hpp>

namespace shardflow::cli {

/// One shard as the report sees it.
struct shard_view {
  std::string id;
  std::shared_ptr<flusher_meter> meter;
  std::uint64_t input_bytes = 0;           // size of the shard file
  std::optional<std::uint64_t> checkpoint; // byte offset of the last checkpointed record
  bool ended = false;                      // checkpointed at its end
  std::uint64_t generation_at_start = 0;   // before this run
  std::uint64_t generation = 0;            // now
  std::chrono::steady_clock::time_point last_checkpoint_change;

  /// Restarts in this run (each incarnation loads once; the first load is not a restart).
  std::uint64_t restarts() const noexcept {
    return generation > generation_at_start + 1 ? generation - generation_at_start - 1 : 0;
  }

  /// Bytes of input after the checkpoint.
  std::uint64_t lag_bytes() const noexcept {
    if (ended)
      return 0;
    const auto done = checkpoint ? *checkpoint : 0;
    return input_bytes > done ? input_bytes - done : 0;
  }
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
};

/// Adds up `shards`.
run_totals totals_of(const std::vector<shard_view>& shards);

/// Returns the live progress line (no newline): rates since the previous line, lag per shard at a
/// glance, restarts.
std::string progress_line(const std::vector<shard_view>& shards, const run_totals& now,
                          const run_totals& before, double seconds_since_before,
                          double seconds_total);

/// Returns the summary table printed at the end.
std::string summary_table(const std::vector<shard_view>& shards, double seconds, bool stopped,
                          std::uint64_t dead_letters);

/// Returns the machine-readable summary.
std::string summary_json(const std::vector<shard_view>& shards, double seconds, int exit_code,
                         const std::vector<std::string>& problems, std::uint64_t dead_letters);

/// Returns the Prometheus text exposition of the shards.
std::string prometheus_text(const std::vector<shard_view>& shards);

} // namespace shardflow::cli
