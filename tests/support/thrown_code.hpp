// tests/support/thrown_code.hpp - what shardflow::error code a call throws (errc::none if none).
#pragma once

#include <functional>

#include <shardflow/core/error.hpp>

namespace shardflow::testing {

/// Runs `f` and returns the code of the shardflow::error it throws, or errc::none.
inline errc thrown_code(const std::function<void()>& f) {
  try {
    f();
  } catch (const error& e) {
    return e.code();
  }
  return errc::none;
}

} // namespace shardflow::testing
