// core/checkpoint_outbox.hpp - the pure decisions of a shard's checkpoint path: what to save next,
// when to retry a failed save, when the shard may quit.
//
// No actors and no clock here: times are passed in. The shard actor (actors/shard.hpp) feeds it the
// checkpoints its batch processor emits and the answers of its checkpoint sink, and carries out the
// one action each event returns. Tested without an actor system.
//
// Rules:
// - at most one save is in flight; a newer position offered while one waits supersedes it;
// - the end marker (an empty checkpoint) always leaves after every position offered before or
//   after it, and once (an end marker offered again, waiting, in flight or acknowledged, is
//   ignored);
// - a failed save is never taken as success: it goes back in line (unless a newer position waits)
//   and the next save leaves after a backoff of min(retry_max, retry_min * 2^n), n = failures since
//   the last acknowledgement (n capped at 20); an acknowledgement resets n;
// - a save refused as stale (a newer incarnation owns the shard) fences the outbox: it forgets
//   everything and answers no further event (the incarnation ends);
// - once closed, the outbox answers `done` when nothing is in flight, waiting or backing off;
// - with a `save_timeout`, a save not answered by its deadline (the time given to `at()` when it
//   left plus the timeout) is overdue: the owner reports it failed, and a later answer to it is not
//   for the save then in flight (each save has its own number, `in_flight_id()`).
//
// The owner times everything with one timer: `next_deadline()` is the earliest time it must look
// again (the deadline of the save in flight, or the end of the backoff); then it asks `overdue(now)`
// and `retry_due(now)`. CAF 0.17 cannot cancel a timer, so a timeout per save request was a clock
// entry (and a wake-up of CAF's clock thread) per save, kept for the whole timeout.
//
//                offer                       ack / retry timer
//     idle ----------------> in flight ------------------------> idle (or the next save, or done)
//       ^                        | failed(now)
//       |      retry(ticket)     v
//       +------------------ backing off (a retry scheduled at now + delay)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// Tunables of a checkpoint outbox.
struct checkpoint_outbox_config {
  /// First retry delay after a failed save; doubles up to `retry_max`.
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{10'000};
  /// How long a save may take before it is overdue (0: no deadline).
  std::chrono::milliseconds save_timeout{0};
};

/// What the owner of an outbox does next.
struct outbox_action {
  enum class kind : std::uint8_t {
    /// Send `cp` to the checkpoint sink now and report its answer (ack or failed).
    save,
    /// Call `retry(ticket)` at `at` (`delay` from the failure; the `attempt`-th retry).
    retry,
    /// Closed and drained: the owner may quit.
    done,
  };
  kind what = kind::done;
  /// save: the checkpoint to send.
  checkpoint cp;
  /// retry: when, which ticket, and for the log how long and which attempt; save: the save's number
  /// (`in_flight_id()` while it is in flight).
  std::chrono::steady_clock::time_point at;
  std::uint64_t ticket = 0;
  std::chrono::milliseconds delay{0};
  unsigned attempt = 0;
};

/// The checkpoint path of one shard incarnation; see the file comment.
class checkpoint_outbox {
public:
  using time_point = std::chrono::steady_clock::time_point;
  using step = std::optional<outbox_action>;

  explicit checkpoint_outbox(checkpoint_outbox_config cfg = {});

  /// Sets the time of the events that follow: a save that leaves now is overdue at now +
  /// save_timeout.
  void at(time_point now) noexcept {
    now_ = now;
  }

  /// Queues `cp` (a position, or the end marker when empty); returns a save when none is in flight.
  /// Ignored once fenced, and for an end marker offered before.
  step offer(checkpoint cp);

  /// The save in flight was acknowledged; returns the next save, or done when closed and drained.
  /// Ignored (nothing returned) when no save is in flight.
  step ack();

  /// The save in flight failed at `now`; returns the retry to schedule. Ignored when none is in
  /// flight.
  step failed(time_point now);

  /// The retry timer with `ticket` fired; returns the next save (or done). Stale tickets are
  /// ignored.
  step retry(std::uint64_t ticket);

  /// Returns the next save (or done) once the retry backoff is over at `now`; nothing before.
  step retry_due(time_point now);

  /// Returns whether the save in flight is past its deadline at `now`: the owner then reports it
  /// failed (`failed(now)`), as when the sink answers with an error.
  bool overdue(time_point now) const noexcept {
    return in_flight_ && cfg_.save_timeout.count() > 0 && now >= deadline_;
  }

  /// Returns the earliest time the owner must look again (`overdue`, `retry_due`): the deadline of
  /// the save in flight, or the end of the backoff; nothing when neither is pending.
  std::optional<time_point> next_deadline() const noexcept {
    if (fenced_)
      return std::nullopt;
    if (in_flight_ && cfg_.save_timeout.count() > 0)
      return deadline_;
    if (backing_off_)
      return retry_at_;
    return std::nullopt;
  }

  /// The sink refused a save as stale: forgets everything and ignores every later event.
  void fence() noexcept;

  /// Forgets what waits and any pending retry (the lease is gone: write nothing more); a save in
  /// flight still gets its answer.
  void drop() noexcept;

  /// No more offers are coming after those already made (and any made before `done`); returns done
  /// when already drained.
  step close();

  /// Returns the save in flight, if any.
  const std::optional<checkpoint>& in_flight() const noexcept {
    return in_flight_;
  }

  /// Returns the number of the save in flight (of the last one when none is): an answer to an
  /// older save (one that was overdue) is not an answer to this one.
  std::uint64_t in_flight_id() const noexcept {
    return saves_;
  }

  /// Returns whether nothing is in flight, waiting or backing off.
  bool drained() const noexcept {
    return !in_flight_ && !waiting_ && !waiting_end_ && !backing_off_;
  }

  /// Returns whether a retry is pending.
  bool backing_off() const noexcept {
    return backing_off_;
  }

  bool closed() const noexcept {
    return closed_;
  }

  bool fenced() const noexcept {
    return fenced_;
  }

  /// Acknowledged saves.
  std::uint64_t acked() const noexcept {
    return acked_;
  }

  /// Failed saves (each retried).
  std::uint64_t failures() const noexcept {
    return failures_;
  }

private:
  step pump();

  checkpoint_outbox_config cfg_;
  std::optional<checkpoint> in_flight_;
  std::optional<checkpoint> waiting_; // the newest position behind the one in flight
  bool waiting_end_ = false;          // the end marker, after every position
  bool end_offered_ = false;          // the end marker was offered: a second offer is ignored
  bool backing_off_ = false;
  bool closed_ = false;
  bool fenced_ = false;
  unsigned attempt_ = 0; // failures since the last acknowledgement
  std::uint64_t ticket_ = 0;
  std::uint64_t saves_ = 0; // saves sent; the one in flight has this number
  time_point now_{};        // the time of the current event (at())
  time_point deadline_{};   // of the save in flight, with a save_timeout
  time_point retry_at_{};   // the end of the backoff
  std::uint64_t acked_ = 0;
  std::uint64_t failures_ = 0;
};

} // namespace shardflow
