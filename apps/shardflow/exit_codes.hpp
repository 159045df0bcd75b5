// apps/shardflow/exit_codes.hpp - the exit codes of the shardflow command, and the one mapping from
// an error code to an exit code that every command uses.
//
// The table (also in `shardflow --help` and the README's exit-code section):
//
//     0    done, or stopped gracefully on a signal with everything checkpointed
//     1    the job failed: a shard gave up, an output, store or input could not be read or written
//          (a full disk, permissions: errc group io), or anything else went wrong
//     2    the command line was wrong
//     3    bad input: a malformed record or input line, a missing stream or input file (errc group
//          input)
//     4    another process owns a shard this run was to process (errc::shard_owned)
//     130  a second signal stopped the run at once (a rerun resumes from the checkpoints)
#pragma once

#include <shardflow/core/error.hpp>

namespace shardflow::cli {

/// The job was done (or stopped gracefully on a signal, everything checkpointed).
constexpr int exit_ok = 0;
/// The job failed: a shard kept failing, a store or an output could not be used, ...
constexpr int exit_failed = 1;
/// The command line was wrong.
constexpr int exit_usage = 2;
/// Input was not what it should be (a malformed record stopped a shard, a missing stream).
constexpr int exit_bad_input = 3;
/// Another process owns one of the shards (a second run on the same shards).
constexpr int exit_owned = 4;
/// A second signal stopped the run at once (nothing is lost: a rerun replays from the checkpoints).
constexpr int exit_interrupted = 130;

/// The exit-code table above, as `--help` prints it.
constexpr const char* exit_code_help
  = "Exit codes: 0 done (or stopped gracefully); 1 the job failed (a shard gave up, a read or "
    "write failed: a full disk, permissions); 2 bad command line; 3 bad input (a malformed "
    "record, a missing stream or input file); 4 another process owns a shard; 130 stopped at once "
    "by a second signal; 141 (SIGPIPE) the reader of --flusher stdout closed the pipe.";

/// Returns the exit code for a failure with `code`: 0 for none, `exit_bad_input` for the input
/// group, `exit_owned` for errc::shard_owned, `exit_failed` for everything else (I/O failures included: a full disk is not bad input).
constexpr int exit_code_of(errc code) noexcept {
  if (code == errc::shard_owned)
    return exit_owned;
  switch (group_of(code)) {
    case errc_group::none:
      return exit_ok;
    case errc_group::input:
      return exit_bad_input;
    default:
      return exit_failed;
  }
}

/// Returns `exit_code_of(e.code())`.
inline int exit_code_of(const error& e) noexcept {
  return exit_code_of(e.code());
}

} // namespace shardflow::cli
