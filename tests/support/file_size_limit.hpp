// tests/support/file_size_limit.hpp - a disk that fills up, for a scope: lowers this process's file
// size limit, so writes past it fail (EFBIG) part way, as on a full disk.
#pragma once

#include <csignal>

#include <sys/resource.h>

#include <catch2/catch.hpp>

namespace shardflow::testing {

/// Writes past `bytes` of any file fail while this lives (SIGXFSZ is ignored meanwhile).
struct file_size_limit {
  explicit file_size_limit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lower = saved;
    lower.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lower) == 0);
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
  }
  file_size_limit(const file_size_limit&) = delete;
  file_size_limit& operator=(const file_size_limit&) = delete;

  rlimit saved{};
  void (*old_handler)(int) = nullptr;
};

} // namespace shardflow::testing
