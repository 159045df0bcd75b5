#include "apps/shardflow/signals.hpp"

#include <csignal>
#include <cstring>

#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"

namespace shardflow::cli {

namespace {

std::atomic<int> signals_seen{0};
std::atomic<bool> stop_flag{false};
const char* stopping_command = "shardflow";
const char* stopping_afterwards = "";

extern "C" void on_stop_signal(int) {
  stop_flag.store(true);
  if (signals_seen.fetch_add(1) >= 1) {
    // Only async-signal-safe calls here.
    const char head[] = "\nshardflow ";
    const char middle[] = ": stopping at once; ";
    auto ignored = ::write(STDERR_FILENO, head, sizeof head - 1);
    ignored = ::write(STDERR_FILENO, stopping_command, std::strlen(stopping_command));
    ignored = ::write(STDERR_FILENO, middle, sizeof middle - 1);
    ignored = ::write(STDERR_FILENO, stopping_afterwards, std::strlen(stopping_afterwards));
    ignored = ::write(STDERR_FILENO, "\n", 1);
    (void) ignored;
    ::_exit(exit_interrupted);
  }
}

void handle(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

} // namespace

void stop_on_signals(const char* command, const char* afterwards) {
  stopping_command = command;
  stopping_afterwards = afterwards;
  handle(SIGINT, on_stop_signal);
  handle(SIGTERM, on_stop_signal);
}

void ignore_stop_signals() {
  handle(SIGINT, SIG_IGN);
  handle(SIGTERM, SIG_IGN);
}

void ignore_sigpipe() {
  handle(SIGPIPE, SIG_IGN);
}

const std::atomic<bool>& stop_requested() noexcept {
  return stop_flag;
}

int stop_signals_seen() noexcept {
  return signals_seen.load();
}

stop_deadline::stop_deadline(std::chrono::milliseconds limit, std::string text,
                             std::string resumes) {
  if (limit.count() > 0)
    thread_ = std::thread{[this, limit, text = std::move(text), resumes = std::move(resumes)] {
      watch(limit, text, resumes);
    }};
}

stop_deadline::~stop_deadline() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void stop_deadline::arm() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    armed_ = true;
  }
  cv_.notify_all();
}

void stop_deadline::watch(std::chrono::milliseconds limit, const std::string& text,
                          const std::string& resumes) {
  std::unique_lock<std::mutex> lock{mtx_};
  // A signal handler cannot notify: the flag is looked at every 50 ms.
  while (!done_ && !armed_ && !stop_requested().load())
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  if (cv_.wait_for(lock, limit, [this] { return done_; }))
    return;
  say(log_level::error, "the stop took longer than --stop-timeout {}: stopping at once; a rerun {}",
      text, resumes);
  std::fflush(stderr);
  ::_exit(exit_interrupted); // as a second signal: the shards are not waited for
}

} // namespace shardflow::cli
