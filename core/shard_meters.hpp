// core/shard_meters.hpp - what a host reads about a shard without asking it: position, generation,
// restarts and outcome, as relaxed atomics.
//
// A runtime keeps one `shard_meters` per shard for the shard's whole life, across incarnations: the
// shard actor writes it (generation on start, position on each acknowledged checkpoint, `ended` or
// `stopped` when it finishes), the runtime writes `gave_up` when the shard's group gives up. Hosts
// (progress lines, summaries, Prometheus) read it from any thread at any time, without a message
// and without a second connection to the checkpoint store. Each field is exact on its own; fields
// read one after another may come from different moments.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

namespace shardflow {

/// How a shard's life ended, or that it has not.
enum class shard_outcome : std::uint8_t {
  /// Still running (or being restarted).
  running,
  /// Its records ended and it checkpointed at its last record (a finite source, or `end`).
  ended,
  /// It was stopped (stop_shard, shutdown, or its source stopped before its end: record_source::
  /// stopped()): final flush and checkpoint, but its records may not have ended (no end marker).
  stopped,
  /// Its supervision group exceeded its restart intensity: it gave up, records may be left.
  gave_up,
};

/// Returns "running", "ended", "stopped" or "gave_up".
constexpr const char* to_string(shard_outcome x) noexcept {
  switch (x) {
    case shard_outcome::running:
      return "running";
    case shard_outcome::ended:
      return "ended";
    case shard_outcome::stopped:
      return "stopped";
    case shard_outcome::gave_up:
      return "gave_up";
  }
  return "unknown";
}

/// The meters of one shard; see the file comment. All loads and stores are relaxed.
struct shard_meters {
  /// `acked_position` before the first acknowledged checkpoint, or when the position does not fit
  /// 64 bits (e.g. a Kinesis sequence number).
  static constexpr std::uint64_t no_position = std::numeric_limits<std::uint64_t>::max();

  /// The generation (incarnation) running now; 0 before the first start.
  std::atomic<std::uint64_t> generation{0};
  /// Incarnations started after the first one.
  std::atomic<std::uint64_t> restarts{0};
  /// Records received, over all incarnations (replayed records count again).
  std::atomic<std::uint64_t> records_received{0};
  /// Checkpoints the sink acknowledged, over all incarnations.
  std::atomic<std::uint64_t> checkpoints_acked{0};
  /// The sequence base of the last acknowledged checkpoint (a local stream's byte offset, a Kafka
  /// offset), or `no_position`.
  std::atomic<std::uint64_t> acked_position{no_position};
  /// Whether the last acknowledged checkpoint is the shard's end marker.
  std::atomic<bool> acked_end{false};
  /// How the shard's life ended, or `running`.
  std::atomic<shard_outcome> outcome{shard_outcome::running};
};

} // namespace shardflow
