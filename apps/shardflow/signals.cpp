#include "apps/shardflow/signals.hpp"

#include <csignal>
#include <cstring>

#include <unistd.h>

#include "apps/shardflow/exit_codes.hpp"

namespace shardflow::cli {

namespace {

std::atomic<int> signals_seen{0};
std::atomic<bool> stop_flag{false};
const char* stopping_command = "shardflow";

extern "C" void on_stop_signal(int) {
  stop_flag.store(true);
  if (signals_seen.fetch_add(1) >= 1) {
    // Only async-signal-safe calls here.
    const char head[] = "\nshardflow ";
    const char tail[] = ": stopping at once; a rerun resumes from the checkpoints\n";
    auto ignored = ::write(STDERR_FILENO, head, sizeof head - 1);
    ignored = ::write(STDERR_FILENO, stopping_command, std::strlen(stopping_command));
    ignored = ::write(STDERR_FILENO, tail, sizeof tail - 1);
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

void stop_on_signals(const char* command) {
  stopping_command = command;
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

} // namespace shardflow::cli
