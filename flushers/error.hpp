// flushers/error.hpp - the error codes of shardflow and the exception that carries them.
//
// Every failure shardflow reports has one code from `errc` and a message written for the person who
// reads the log: what happened, to which shard or record, and what to do. Plain code (the vocabulary,
// flushers, the batch processor) throws `shardflow::error`; the actor layer turns it into a CAF error
// with the same code and text (actors/ registers the category), so a supervisor can log why a shard
// died.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace shardflow {

/// Error codes of shardflow; one per kind of failure, stable across releases.
enum class errc : std::uint8_t {
  /// Not an error.
  none = 0,
  /// A sequence number was not a decimal number or a known sentinel.
  bad_sequence_number,
  /// A flusher threw from `add`, `flush` or `heartbeat`.
  flusher_failed,
  /// A flusher returned a token that the batch processor never issued.
  unknown_token,
  /// A flusher returned the same token twice.
  duplicate_token,
  /// A flusher reported `full` for a record even on an empty batch: the record can never fit.
  record_never_fits,
  /// `flush(full)` left records outstanding, so the shard cannot checkpoint at its end.
  incomplete_full_flush,
  /// No records arrived within the watchdog timeout.
  watchdog_timeout,
  /// The batch processor was used after it had failed or shut down.
  processor_stopped,
  /// The checkpoint sink could not store or load a checkpoint.
  checkpoint_failed,
  /// A checkpoint write came from an incarnation older than the newest one (fenced).
  stale_generation,
  /// A supervisor's flags are invalid (strategy, intensity, period, auto_shutdown).
  bad_flags,
  /// A child spec is invalid, or a combination of spec and flags is (OTP's bad_combination).
  bad_child_spec,
  /// Two child specs share an id.
  duplicate_child,
  /// start_child: a child with this id is running (OTP's already_started).
  already_started,
  /// start_child: a spec with this id exists but its child is not running (OTP's already_present).
  already_present,
  /// restart_child / delete_child: the child is running.
  running,
  /// restart_child / delete_child: the child is waiting to be restarted.
  restarting,
  /// No child with this id (or handle).
  not_found,
  /// The operation is not available under simple_one_for_one.
  simple_one_for_one,
  /// A child failed to start (its start function failed, it died or did not answer in time).
  start_failed,
  /// More restarts than the intensity allows within the period: the supervisor gave up.
  restart_limit_reached,
  /// Input that is not what it should be (a malformed record line, a missing stream).
  bad_input,
  /// A flusher or store could not write its output.
  io_failed,
};

/// Returns the name of `code`, e.g. "duplicate_token".
const char* to_string(errc code) noexcept;

/// The exception shardflow throws: an error code plus a human-readable message.
class error : public std::runtime_error {
public:
  /// Creates an error with `code` and the complete message `what`.
  error(errc code, const std::string& what) : std::runtime_error(what), code_(code) {
    // nop
  }

  /// Returns the error code.
  errc code() const noexcept {
    return code_;
  }

private:
  errc code_;
};

} // namespace shardflow
