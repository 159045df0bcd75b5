// apps/shardflow/signals.hpp - the shardflow command's one signal policy (library code never sets
// signal handlers; the commands choose here).
//
// Two policies:
//
// - `stop_on_signals` (run, mld-server): the first SIGINT or SIGTERM asks for a graceful stop
//   (`stop_requested()` turns true: every shard flushes and checkpoints, the server closes its
//   sessions); a second one ends the process at once with exit code 130 (nothing is lost: a rerun
//   replays from the checkpoints).
// - `ignore_stop_signals` (mld, mld-connect: a KCL MultiLangDaemon's child): SIGINT and SIGTERM are
//   ignored, since the daemon ends its child by closing its stdin and a signal to the whole process
//   group must not cut the protocol short.
//
// `ignore_sigpipe` makes a vanished peer (a closed pipe or socket) a write error instead of death.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace shardflow::cli {

/// The first SIGINT/SIGTERM sets `stop_requested()`; a second exits with 130 after logging
/// "stopping at once; AFTERWARDS" at error level, as "TIME error shardflow COMMAND: ..." or as a
/// JSON line after the log format (`--log-format`) in force when this is called.
void stop_on_signals(const char* command,
                     const char* afterwards = "a rerun resumes from the checkpoints");

/// SIGINT and SIGTERM are ignored.
void ignore_stop_signals();

/// SIGPIPE is ignored.
void ignore_sigpipe();

/// Whether a stop was asked for (see `stop_on_signals`); set from a signal handler.
const std::atomic<bool>& stop_requested() noexcept;

/// How many stop signals arrived.
int stop_signals_seen() noexcept;

/// Bounds a graceful stop: once armed (by `arm`, or by itself when `stop_requested()` turns true), a
/// thread of its own waits `limit` (0: no limit) and then ends the process as a second signal does:
/// exit 130, after logging "the stop took longer than --stop-timeout TEXT: stopping at once; a rerun
/// RESUMES". Destroying it (the stop finished) ends the wait. It watches from its own thread, so a
/// main thread that is blocked (a shard start waiting for actors that a stuck flusher holds) cannot
/// postpone it.
class stop_deadline {
public:
  stop_deadline(std::chrono::milliseconds limit, std::string text, std::string resumes);
  ~stop_deadline();

  stop_deadline(const stop_deadline&) = delete;
  stop_deadline& operator=(const stop_deadline&) = delete;

  /// Starts the countdown now (once; later calls do nothing).
  void arm();

private:
  void watch(std::chrono::milliseconds limit, const std::string& text, const std::string& resumes);

  std::mutex mtx_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool done_ = false;
  std::thread thread_;
};

} // namespace shardflow::cli
