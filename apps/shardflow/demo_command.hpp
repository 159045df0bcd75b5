// apps/shardflow/demo_command.hpp - `shardflow demo`: a generated stream through batch processors.
//
// Generates records for a number of shards, pushes them in batches through one batch processor per
// shard with a built-in flusher, and prints each shard's checkpoints and the rate. It needs no input
// and writes nothing, so it is the smoke test a new user runs first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Options of `shardflow demo`.
struct demo_config {
  std::size_t shards = 4;
  std::uint64_t records = 1'000'000;
  std::size_t batch_size = 500;
  std::size_t flusher_capacity = 1'000;
  std::size_t data_bytes = 100;
  std::chrono::milliseconds checkpoint_interval{100};
};

/// Registers `demo` on `app`; the command stores its exit code in `exit_code` when it runs.
void add_demo_command(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
