// core/restart_policy.hpp - the pure decisions of a supervisor: whether to restart, when to give up,
// and how long to back off.
//
// No actors and no clock here: times are passed in. The supervisor (actors/supervisor.hpp) applies
// these rules; they are tested without an actor system.
//
// Restart decision (OTP), by restart type and exit reason:
//
//     restart type | normal              | shutdown            | anything else (incl. kill)
//     -------------+---------------------+---------------------+----------------------------
//     permanent    | restart             | restart             | restart
//     transient    | keep, not running   | keep, not running   | restart
//     temporary    | remove the spec     | remove the spec     | remove the spec
//
// Intensity (OTP's exact sliding window): every restart decision appends `now` truncated to whole
// seconds after dropping stamps older than `now - period` (a stamp equal to `now - period` stays);
// more than `intensity` stamps means give up.
//
// Backoff (Akka's restartWithBackoff): restart n (n = 0, 1, ...) waits min(max, min * 2^n), times
// 1 + U[0,1) * random_factor applied after the cap; n >= 30 waits max.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace shardflow {

/// How a supervised child is restarted (OTP restart types).
enum class restart_type : std::uint8_t {
  /// Always restarted.
  permanent,
  /// Restarted only after an abnormal exit.
  transient,
  /// Never restarted; its spec is removed when it exits.
  temporary,
};

/// How a child exited, as far as restart decisions care.
enum class exit_kind : std::uint8_t {
  /// It finished (`normal`).
  normal,
  /// It was shut down (`shutdown`, `{shutdown, Term}`).
  shutdown,
  /// Anything else: a crash, a kill, an error.
  abnormal,
};

/// What a supervisor does after a child exited.
enum class restart_decision : std::uint8_t {
  /// Restart it (and apply the strategy).
  restart,
  /// Keep its spec; it is not running.
  keep,
  /// Remove its spec.
  remove,
};

/// Returns OTP's decision for a child of type `type` that exited as `how`.
restart_decision decide_restart(restart_type type, exit_kind how) noexcept;

/// Akka-style restart backoff of one child; `min == 0` restarts at once.
struct backoff_spec {
  /// Delay before the first restart; 0 disables backoff.
  std::chrono::nanoseconds min{0};
  /// Upper bound of the delay before jitter.
  std::chrono::nanoseconds max{0};
  /// Jitter: the delay is multiplied by 1 + U[0,1) * random_factor.
  double random_factor = 0.2;
  /// A child that stays up this long gets its restart count reset; 0 means (min + max) / 2.
  std::chrono::nanoseconds reset_after{0};
};

/// Returns the delay before restart number `n` (0-based); `uniform01` is a draw from U[0,1).
std::chrono::nanoseconds backoff_delay(const backoff_spec& spec, unsigned n,
                                       double uniform01) noexcept;

/// OTP's restart intensity window: at most `intensity` restarts in `period` whole seconds.
class restart_window {
public:
  /// Creates a window allowing `intensity` restarts per `period`.
  restart_window(int intensity, std::chrono::seconds period) noexcept
    : intensity_(intensity), period_(period.count()) {
    // nop
  }

  /// Records a restart decision at `now`; returns false when it is one too many.
  bool add(std::chrono::steady_clock::time_point now);

  /// Returns how many restarts the window holds.
  std::size_t size() const noexcept {
    return stamps_.size();
  }

private:
  int intensity_;
  std::int64_t period_;
  std::vector<std::int64_t> stamps_; // a few: a deque would allocate 576 bytes up front
};

} // namespace shardflow
