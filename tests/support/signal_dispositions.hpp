// tests/support/signal_dispositions.hpp - what SIGPIPE, SIGINT and SIGTERM are set to, to check that
// library code installs no signal handlers.
#pragma once

#include <csignal>

namespace shardflow::testing {

/// The dispositions of SIGPIPE, SIGINT and SIGTERM when it was made.
struct signal_dispositions {
  using handler = void (*)(int);

  handler pipe = of(SIGPIPE);
  handler interrupt = of(SIGINT);
  handler terminate = of(SIGTERM);

  static handler of(int sig) {
    struct sigaction now {};
    ::sigaction(sig, nullptr, &now);
    return now.sa_handler;
  }

  /// Returns whether all three are as they were.
  bool unchanged() const {
    return of(SIGPIPE) == pipe && of(SIGINT) == interrupt && of(SIGTERM) == terminate;
  }
};

} // namespace shardflow::testing
