// core/error.hpp - the error codes of shardflow and the exception that carries them.
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

/// Error codes of shardflow, grouped by who has to act (see `errc_group`); each code has exactly one
/// meaning. The numeric value of a code is stable within a group's range.
enum class errc : std::uint8_t {
  /// Not an error.
  none = 0,

  // -- contract (10-29): a flusher broke the flusher contract, or the processor was misused --------

  /// A flusher threw from `add`, `flush` or `heartbeat`.
  flusher_failed = 10,
  /// A flusher returned a token that the batch processor never issued.
  unknown_token,
  /// A flusher returned the same token twice.
  duplicate_token,
  /// A flusher reported `full` for a record even on an empty batch: the record can never fit.
  record_never_fits,
  /// `flush(full)` left records outstanding, so the shard cannot checkpoint at its end.
  incomplete_full_flush,
  /// The batch processor was used after it had failed or shut down.
  processor_stopped,
  /// No records arrived within the watchdog timeout.
  watchdog_timeout,

  // -- supervision (30-49): supervisor flags, child specs and the supervisor's child table -----------

  /// A supervisor's flags are invalid (strategy, intensity, period, auto_shutdown).
  bad_flags = 30,
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
  /// The child (or shard) is waiting to be restarted; ask again once it runs.
  restarting,
  /// A supervisor has no child with this id (or handle).
  not_found,
  /// The operation is not available under simple_one_for_one.
  simple_one_for_one,
  /// A child failed to start (its start function failed, it died or did not answer in time).
  start_failed,
  /// More restarts than the intensity allows within the period: the supervisor gave up. This is
  /// the exit reason of a supervisor that gave up, so its own parent sees an abnormal exit.
  restart_limit_reached,

  // -- runtime (50-69): what a host asked of a runtime or a shard that cannot answer it -------------

  /// The runtime has no shard with this id.
  unknown_shard = 50,
  /// The shard has ended (its source ended, it was stopped or it gave up): it takes no pushes.
  shard_ended,
  /// The runtime is shutting down: it takes no new work.
  shutting_down,
  /// The runtime has ended: every shard is done and its actors are gone.
  runtime_ended,
  /// The shard's feeder stopped under it, so this incarnation ends too (its group restarts both).
  feeder_stopped,

  // -- store (70-89): checkpoints and shard ownership -------------------------------------------------

  /// The checkpoint sink could not store or load a checkpoint.
  checkpoint_failed = 70,
  /// A checkpoint write came from an incarnation older than the newest one (fenced).
  stale_generation,
  /// Another process owns the shard (holds its claim): this one must not process it.
  shard_owned,

  // -- input (90-109): what came in is not what it should be -----------------------------------------

  /// Input that is not what it should be (a malformed record line, a missing stream, a bad option).
  bad_input = 90,
  /// A sequence number was not a decimal number or a known sentinel.
  bad_sequence_number,

  // -- I/O (110-129): the machine failed us ---------------------------------------------------------

  /// A flusher, source or store could not read or write (full disk, permissions, a closed peer).
  io_failed = 110,
};

/// The groups of `errc`, in the order of the enum.
enum class errc_group : std::uint8_t { none, contract, supervision, runtime, store, input, io };

/// Returns the group of `code`.
constexpr errc_group group_of(errc code) noexcept {
  auto x = static_cast<std::uint8_t>(code);
  if (x == 0)
    return errc_group::none;
  if (x < 30)
    return errc_group::contract;
  if (x < 50)
    return errc_group::supervision;
  if (x < 70)
    return errc_group::runtime;
  if (x < 90)
    return errc_group::store;
  if (x < 110)
    return errc_group::input;
  return errc_group::io;
}

/// Returns the name of `group`, e.g. "contract".
const char* to_string(errc_group group) noexcept;

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
