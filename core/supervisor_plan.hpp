// core/supervisor_plan.hpp - the pure state machine of an OTP supervisor: a child table and a step
// queue; events in, actions out.
//
// No actors, no clock, no I/O: the actor (actors/supervisor.cpp) turns CAF messages into the events
// below, passes the time in, and carries out the actions it takes with take_actions(). Every event
// may append actions; the actor drains them after each call, in order. Decisions follow
// core/restart_policy.hpp (restart types, the intensity window, backoff) and OTP:
//
//   - Static children start one after another in list order (a `spawn` action, answered at once
//     with spawned / spawn_ignored / spawn_failed, then a `handshake` action answered later with
//     handshake_ok / handshake_failed / a down event); the `started` action follows the last one.
//   - A child that exits is restarted by the strategy (`restart_by_strategy`, the one function for
//     exits and for retries after a failed restart), counted by the intensity window; one too many
//     ends the supervisor with quit_reason::gave_up (errc::restart_limit_reached, abnormal).
//   - With `parallel_start`, the static children's handshakes overlap: each child is spawned in
//     list order as soon as the one before it is spawned (not once it answered), and `started`
//     follows the last answer. A failed answer is a start failure as before: every child that is
//     alive is stopped in reverse order. For children that do not need each other up to start
//     (the shard groups under a root): 10,000 handshakes in a row were most of a big tree's start.
//     `start_window` bounds the handshakes outstanding at once (all 10,000 at once were slower).
//   - A child that ends normally (or with shutdown) while its handshake is outstanding has started
//     and ended: not a start failure (a finite child with little to do).
//   - Exits that arrive while steps run wait until the queue is empty (the phase is busy), so a
//     group restart or a start sequence is never interleaved with another decision.
//   - A significant child that gave up never triggers any_significant; under all_significant it
//     is gone (a temporary child), so the supervisor shuts down once no other significant child is
//     left (the child's failure is its own: a temporary child's failure never escalates).
//
// Phases: starting (the static children), idle (nothing under way: requests are served), busy
// (a restart or a request is being carried out: the actor defers management requests),
// shutting_down (stopping children in reverse order), ended (after the `quit` action).
//
// Timers carry their kind, the child key and its generation; a stale timer (the child moved on, was
// restarted, removed or terminated) is ignored. Child keys start at 1 and are never reused.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <shardflow/core/error.hpp>
#include <shardflow/core/fifo.hpp>
#include <shardflow/core/restart_policy.hpp>

namespace shardflow {

/// Which children a supervisor restarts when one of them has to be restarted.
enum class strategy : std::uint8_t { one_for_one, one_for_all, rest_for_one, simple_one_for_one };

/// When significant children shut their supervisor down (OTP 24 auto_shutdown).
enum class auto_shutdown : std::uint8_t { never, any_significant, all_significant };

/// How a supervisor stops one child.
struct shutdown_spec {
  enum class mode : std::uint8_t {
    /// Kill at once (`exit_reason::kill`).
    brutal_kill,
    /// Ask it to stop (`user_shutdown`), kill it after `timeout`.
    timeout,
    /// Ask it to stop and wait as long as it takes (for sub-supervisors).
    infinity,
  };
  mode how = mode::timeout;
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);

  /// Returns a spec that kills at once.
  static shutdown_spec brutal_kill() {
    return {mode::brutal_kill, std::chrono::nanoseconds{0}};
  }

  /// Returns a spec that asks first and kills after `t`.
  static shutdown_spec after(std::chrono::nanoseconds t) {
    return {mode::timeout, t};
  }

  /// Returns a spec that waits without limit.
  static shutdown_spec infinity() {
    return {mode::infinity, std::chrono::nanoseconds{0}};
  }
};

/// What the plan knows of a child spec (the start function stays with the actor).
struct plan_child {
  /// Unique among static children; empty under simple_one_for_one.
  std::string id;
  restart_type restart = restart_type::permanent;
  /// Already resolved (the actor applies the worker / supervisor defaults).
  shutdown_spec shutdown;
  bool significant = false;
  backoff_spec backoff;
};

/// Where a child is in its life.
enum class child_phase : std::uint8_t {
  /// Not running (never started, ended, terminated or ignored).
  stopped,
  /// Its start function is being called.
  spawning,
  /// Spawned; its start handshake is outstanding.
  starting,
  /// Up.
  running,
  /// Asked to stop; its down event is awaited.
  terminating,
  /// Waiting for a restart (backoff, or a retry after a failed start).
  restarting,
};

/// One row of the child table.
struct plan_entry {
  std::uint64_t key = 0;
  plan_child spec;
  /// Of the current (or last) incarnation.
  std::uint64_t gen = 0;
  child_phase phase = child_phase::stopped;
  /// Whether an incarnation is alive (spawned and its down event not seen yet).
  bool alive = false;
  unsigned restarts_in_row = 0;
  /// Spawned by a parallel start: its handshake answer is awaited outside the step queue.
  bool awaited = false;
};

/// The phases of a supervisor (see the file comment).
enum class supervisor_phase : std::uint8_t { starting, idle, busy, shutting_down, ended };

/// Why a supervisor quits.
enum class quit_reason : std::uint8_t {
  /// Its parent or host asked (the actor knows the reason it was given).
  requested,
  /// A static child failed to start (errc::start_failed).
  start_failed,
  /// More restarts than the intensity allows (errc::restart_limit_reached).
  gave_up,
  /// Significant children ended (a clean `shutdown`).
  auto_shutdown,
};

/// The kinds of timers the plan asks for.
enum class timer_kind : std::uint8_t {
  /// A child's restart after its backoff.
  restart_backoff,
  /// The end of a group restart's backoff (one_for_all, rest_for_one); `gen` is a token.
  group_backoff,
  /// A child that did not stop within its shutdown timeout is killed.
  shutdown_deadline,
  /// The shared shutdown timer of simple_one_for_one; `gen` is an epoch.
  shutdown_all_deadline,
  /// The child stayed up long enough: its backoff count resets (if still `count`).
  backoff_reset,
  /// Retry a restart whose start failed (delay 0: after the messages already waiting).
  try_again,
};

/// A timer: what the actor sends back to itself after `delay`.
struct plan_timer {
  timer_kind kind = timer_kind::try_again;
  std::uint64_t key = 0;
  std::uint64_t gen = 0;
  std::uint64_t count = 0;
};

/// One thing the actor must do.
struct plan_action {
  enum class kind : std::uint8_t {
    /// Call child `key`'s start function (incarnation `gen`); answer with spawned(),
    /// spawn_ignored() or spawn_failed() before anything else.
    spawn,
    /// Send child `key` the start handshake (with the start timeout).
    handshake,
    /// Send child `key` an exit: kill (`kill`) or shutdown.
    stop,
    /// Deliver `timer` back to timer_fired() after `delay`.
    timer,
    /// Answer request `token`: `code` none means success (then `key` names the child, 0: none).
    reply,
    /// Child `key`'s spec is gone.
    forget,
    /// The static children are up: answer whoever waits for the start.
    started,
    /// Tell the supervisor's report hook `text`.
    report,
    /// Every child is stopped: exit with `why` (`text` says more).
    quit,
  };
  kind what = kind::report;
  std::uint64_t key = 0;
  std::uint64_t gen = 0;
  bool kill = false;
  plan_timer timer;
  std::chrono::nanoseconds delay{0};
  std::uint64_t token = 0;
  errc code = errc::none;
  std::string text;
  quit_reason why = quit_reason::requested;
};

/// The flags the plan needs.
struct supervisor_plan_config {
  strategy how = strategy::one_for_one;
  int intensity = 1;
  std::chrono::seconds period{5};
  auto_shutdown shutdown_mode = auto_shutdown::never;
  std::uint64_t seed = 0x5eed;
  /// The static children's handshakes overlap (see the file comment).
  bool parallel_start = false;
  /// With parallel_start: at most this many handshakes outstanding at once (0: no limit); the
  /// next child is spawned when one is answered.
  std::size_t start_window = 0;
};

/// How a child exited, as the down event tells it.
struct child_exit {
  exit_kind how = exit_kind::normal;
  /// Its reason was errc::restart_limit_reached (a sub-supervisor that gave up).
  bool gave_up = false;
  /// The reason, rendered for messages.
  std::string text;
};

/// The supervisor's state machine.
class supervisor_plan {
public:
  using time_point = std::chrono::steady_clock::time_point;

  supervisor_plan() = default;

  explicit supervisor_plan(supervisor_plan_config cfg);

  // -- setup -----------------------------------------------------------------------------------

  /// Adds a static child (before begin); returns its key.
  std::uint64_t add_static(plan_child spec);

  /// Sets the template of simple_one_for_one children.
  void set_template(plan_child spec);

  /// Starts the static children in order.
  void begin();

  // -- requests (each answered by one `reply` action with its token) ---------------------------

  /// start_child with a spec (or, under simple_one_for_one, the template): returns the new key.
  std::uint64_t start_child(std::optional<plan_child> spec, std::uint64_t token);

  /// terminate_child by id (or, under simple_one_for_one, by key).
  void terminate_child(const std::string& id, std::uint64_t token);
  void terminate_key(std::uint64_t key, std::uint64_t token);

  /// restart_child / delete_child by id.
  void restart_child(const std::string& id, std::uint64_t token);
  void delete_child(const std::string& id, std::uint64_t token);

  // -- events ----------------------------------------------------------------------------------

  /// Sets the time of the events and requests that follow (restarts are counted at this time).
  void at(time_point now) noexcept {
    now_ = now;
  }

  /// The start function of `key` returned an actor; `handshake`: it answers the handshake.
  void spawned(std::uint64_t key, bool handshake);
  /// The start function returned OTP's ignore.
  void spawn_ignored(std::uint64_t key);
  /// The start function failed.
  void spawn_failed(std::uint64_t key, std::string why);
  /// Incarnation `gen` of `key` answered its handshake, or failed to (error, timeout).
  void handshake_ok(std::uint64_t key, std::uint64_t gen);
  void handshake_failed(std::uint64_t key, std::uint64_t gen, std::string why);
  /// Incarnation `gen` of `key` is down.
  void down(std::uint64_t key, std::uint64_t gen, child_exit how);
  /// A timer asked for earlier fired.
  void timer_fired(const plan_timer& t);
  /// The parent or host asks the supervisor to stop (quit_reason::requested).
  void shutdown();

  // -- queries ---------------------------------------------------------------------------------

  supervisor_phase phase() const noexcept;

  /// Whether the static children are up.
  bool started() const noexcept {
    return started_;
  }

  /// Whether a static child failed to start (then the supervisor is going away).
  bool start_failed() const noexcept {
    return start_error_.has_value();
  }

  /// The child table, in start order.
  const std::vector<plan_entry>& children() const noexcept {
    return children_;
  }

  const plan_entry* find_id(const std::string& id) const;
  const plan_entry* find_key(std::uint64_t key) const;

  /// Returns and clears the actions so far.
  std::vector<plan_action> take_actions();

private:
  enum class purpose : std::uint8_t { initial, api_start, api_restart, restart };

  struct step {
    enum class kind : std::uint8_t { start, terminate, terminate_all, wait, started_marker, quit };
    kind what;
    std::uint64_t key = 0;
    purpose why = purpose::restart;
    std::optional<std::uint64_t> token;
    std::chrono::nanoseconds delay{0};
  };

  struct pending_exit {
    std::uint64_t key;
    std::uint64_t gen;
    child_exit how;
  };

  // step machine
  void enqueue(step s);
  void run_steps();
  bool exec(step& s); // true: done; false: it waits for an event
  bool exec_start(step& s);
  bool exec_terminate(step& s);
  bool exec_terminate_all();
  void step_done();
  void leave_busy();
  void on_started(plan_entry& c);
  void awaited_answered(plan_entry& c, bool up);
  void fail_start(plan_entry& c, const std::string& why);
  void send_stop(plan_entry& c, bool own_timer);
  void terminated(const step& s, plan_entry* c);
  void begin_shutdown(quit_reason why, std::string text);

  // decisions
  void handle_exit(plan_entry& c, const child_exit& how);
  bool count_restart(const plan_entry& c, const std::string& why);
  void restart_by_strategy(plan_entry& failed);
  void start_after_backoff(plan_entry& c);
  void enqueue_group_backoff(plan_entry& failed);
  void check_auto_shutdown();
  void schedule_backoff_reset(const plan_entry& c);

  // table
  plan_entry* entry(std::uint64_t key);
  plan_entry* entry_id(const std::string& id);
  plan_entry& add(plan_child spec);
  void erase(std::uint64_t key);
  std::string name_of(const plan_entry& c) const;
  bool simple() const noexcept {
    return cfg_.how == strategy::simple_one_for_one;
  }

  // actions
  void emit(plan_action a);
  void kill(const plan_entry& c);
  void reply_ok(const std::optional<std::uint64_t>& token, std::uint64_t key);
  void reply_error(const std::optional<std::uint64_t>& token, errc code, std::string text);
  plan_entry* stopped_child(const std::string& id, std::uint64_t token, const char* what);
  void timer(timer_kind kind, std::uint64_t key, std::uint64_t gen, std::chrono::nanoseconds delay,
             std::uint64_t count = 0);

  supervisor_plan_config cfg_;
  std::vector<plan_entry> children_; // in start order, which is the order of their keys
  plan_child template_;
  restart_window window_{1, std::chrono::seconds{5}};
  std::minstd_rand rng_;
  fifo<step> steps_;
  bool waiting_ = false; // the front step waits for an event
  bool started_ = false;
  bool shutting_down_ = false;
  bool ended_ = false;
  std::optional<std::string> start_error_;
  quit_reason shutdown_why_ = quit_reason::requested;
  std::string shutdown_text_;
  std::string last_start_error_; // why the last restart failed to start, for the give-up message
  fifo<pending_exit> pending_; // exits that came while busy, oldest first
  std::uint64_t next_key_ = 0;
  std::uint64_t next_gen_ = 0;
  std::uint64_t wait_token_ = 0;
  std::uint64_t parallel_epoch_ = 0;
  std::size_t parallel_outstanding_ = 0;
  std::size_t alive_hint_ = 0;
  std::size_t awaiting_ = 0; // handshakes of a parallel start not answered yet
  bool held_ = false;        // the front start step waits for a place in the start window
  time_point now_{};
  std::vector<plan_action> actions_;
};

} // namespace shardflow
