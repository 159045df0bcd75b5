// apps/shardflow/exit_codes.hpp - the exit codes of the shardflow command (documented in README).
#pragma once

namespace shardflow::cli {

/// The job was done (or stopped gracefully on a signal, everything checkpointed).
constexpr int exit_ok = 0;
/// The job failed: a shard kept failing, a store or an output could not be used, ...
constexpr int exit_failed = 1;
/// The command line was wrong.
constexpr int exit_usage = 2;
/// Input was not what it should be (a malformed record stopped a shard, a missing stream).
constexpr int exit_bad_input = 3;
/// A second signal stopped the run at once (nothing is lost: a rerun replays from the checkpoints).
constexpr int exit_interrupted = 130;

} // namespace shardflow::cli
