#include "apps/shardflow/demo_command.hpp"

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "actors/batch_processor.hpp"
#include "flushers/error.hpp"
#include "flushers/null_flusher.hpp"

namespace shardflow::cli {

namespace {

using demo_clock = std::chrono::steady_clock;

// Builds the next batch of shard `shard`, numbering records from `first`.
record_batch make_batch(const demo_config& cfg, std::size_t shard, std::uint64_t first,
                        std::size_t count) {
  std::vector<stream_record> xs(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto& x = xs[i];
    x.partition_key = fmt::format("key-{}", (first + i) * cfg.shards + shard);
    x.data.assign(cfg.data_bytes, static_cast<char>('a' + (first + i) % 26));
    x.sequence.base = sequence_base{first + i};
  }
  return record_batch{std::move(xs)};
}

int run_demo(const demo_config& cfg) {
  fmt::print("shardflow demo: {} records over {} shards, batches of {}, null flusher of capacity {}\n",
             cfg.records, cfg.shards, cfg.batch_size, cfg.flusher_capacity);
  batch_config bcfg;
  bcfg.checkpoint_interval = cfg.checkpoint_interval;
  const auto start = demo_clock::now();
  std::vector<std::unique_ptr<batch_processor>> shards;
  for (std::size_t s = 0; s < cfg.shards; ++s)
    shards.push_back(std::make_unique<batch_processor>(
      fmt::format("shard-{}", s), std::make_unique<null_flusher>(cfg.flusher_capacity), bcfg,
      start));
  const auto per_shard = cfg.records / cfg.shards;
  std::uint64_t produced = 0;
  std::uint64_t checkpoints = 0;
  for (std::uint64_t first = 0; first < per_shard; first += cfg.batch_size) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(cfg.batch_size, per_shard - first));
    for (std::size_t s = 0; s < cfg.shards; ++s) {
      auto batch = make_batch(cfg, s, first, n);
      if (shards[s]->process(batch, demo_clock::now()))
        ++checkpoints;
      produced += n;
    }
  }
  for (auto& p : shards)
    if (auto cp = p->shutdown(shutdown_reason::terminate, demo_clock::now()); cp && cp->position)
      ++checkpoints;
  const auto seconds = std::chrono::duration<double>(demo_clock::now() - start).count();
  fmt::print("\n{:<10} {:>12} {:>10} {:>12} {}\n", "shard", "records", "flushes", "checkpoints",
             "last checkpoint");
  for (const auto& p : shards) {
    const auto st = p->stats();
    fmt::print("{:<10} {:>12} {:>10} {:>12} {}\n", p->id(), st.records, st.flushes, st.checkpoints,
               st.last_checkpoint ? to_string(*st.last_checkpoint) : std::string{"none"});
  }
  fmt::print("\n{} records, {} checkpoints in {:.3f} s: {:.1f} M records/s (generation included)\n",
             produced, checkpoints, seconds, produced / seconds / 1e6);
  return 0;
}

} // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto cfg = std::make_shared<demo_config>();
  auto* cmd = app.add_subcommand(
    "demo", "Push a generated stream through one batch processor per shard and print checkpoints");
  cmd->add_option("--shards", cfg->shards, "number of shards")->check(CLI::Range(1, 1 << 20))
    ->capture_default_str();
  cmd->add_option("--records", cfg->records, "records in total")->capture_default_str();
  cmd->add_option("--batch-size", cfg->batch_size, "records per batch")
    ->check(CLI::Range(1, 1 << 24))
    ->capture_default_str();
  cmd->add_option("--capacity", cfg->flusher_capacity, "records the flusher holds before it is full")
    ->check(CLI::Range(1, 1 << 24))
    ->capture_default_str();
  cmd->add_option("--data-bytes", cfg->data_bytes, "bytes of data per record")
    ->check(CLI::Range(0, 1 << 20))
    ->capture_default_str();
  cmd->callback([cfg, &exit_code] {
    try {
      exit_code = run_demo(*cfg);
    } catch (const error& e) {
      fmt::print(stderr, "shardflow demo: {}\n", e.what());
      exit_code = 1;
    }
  });
}

} // namespace shardflow::cli
