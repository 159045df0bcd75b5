// fuzz/check.hpp - the one assertion of the harnesses: a broken property aborts (libFuzzer then
// saves the input as a crash).
//
// Harnesses run under ASan + UBSan; `SHARDFLOW_FUZZ_CHECK` is for what sanitizers cannot see (a wrong
// answer rather than a bad access), and is on in every build type.
#pragma once

#include <cstdio>
#include <cstdlib>

/// Aborts with the file, line and text of `cond` unless it holds.
#define SHARDFLOW_FUZZ_CHECK(cond)                                                                 \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond);             \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)
