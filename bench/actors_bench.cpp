// bench/actors_bench.cpp - records/s through shard actors, beside the same work in a direct loop.
//
// The same pre-built records (100-byte data, 56-digit sequence numbers, batches of 500) go to N
// shards: every shard reads the first B batches of one shared pool (batches are immutable and shared,
// so 10,000 shards need no more memory than one), with B = max(4, 4,000,000 / 500 / N): at least
// 4,000,000 records in all, and 20,000,000 at 10,000 shards, where start-up would swamp fewer.
//
// - subject:  the full runtime: a root supervisor over N shard groups (feeder + shard actor, null
//             flusher of capacity 1,000), checkpoints to an in-memory sink every 100 ms, CAF worker
//             threads = cores. Timed from spawning the tree until every shard has checkpointed its
//             end and the tree has shut itself down (start-up and shutdown included).
// - baseline: one thread, N batch processors with the same flusher, fed the same batches in the
//             same order (the direct loop: no actors, no messages).
//
// Prints records/s of both, the ratio, and the median and spread of several runs. Not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "bench/bench_records.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/flushers/null_flusher.hpp>

using namespace shardflow;
using bench_clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t batch_size = 500;

// The batches of one shard, read in order (no copies: the batches are shared).
class batches_source final : public record_source {
public:
  explicit batches_source(std::vector<record_batch> xs) : xs_(std::move(xs)) {
  }
  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = 0;
    while (after && pos_ < xs_.size() && xs_[pos_].back().sequence <= *after)
      ++pos_;
  }
  record_batch read(std::size_t) override {
    return pos_ < xs_.size() ? xs_[pos_++] : record_batch{};
  }
  bool at_end() const override {
    return pos_ >= xs_.size();
  }

private:
  std::vector<record_batch> xs_;
  std::size_t pos_ = 0;
};

// The batches of one shard: the first `per_shard` of the pool.
std::vector<record_batch> first(const std::vector<record_batch>& pool, std::size_t per_shard) {
  return {pool.begin(),
          pool.begin() + static_cast<std::ptrdiff_t>(std::min(per_shard, pool.size()))};
}

double run_actors(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                  std::size_t shards, unsigned threads) {
  caf::actor_system_config cfg;
  configure(cfg);
  cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{cfg};
  const auto mine = first(pool, per_shard_batches);
  const auto start = bench_clock::now();
  auto sink = spawn_checkpoint_sink(sys, std::make_shared<memory_checkpoint_store>());
  std::vector<child_spec> groups;
  for (std::size_t s = 0; s < shards; ++s) {
    shard_group_config g;
    g.shard.id = "shard-" + std::to_string(s);
    g.shard.make_flusher = null_flusher::factory(1000);
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(100);
    g.shard.credit = 4 * batch_size;
    g.feeder.max_batch = batch_size;
    g.feeder.poll_interval = std::chrono::milliseconds(0);
    auto xs = mine;
    g.source = [xs] { return std::make_shared<batches_source>(xs); };
    g.sink = sink;
    g.finite = true;
    groups.push_back(shard_group(std::move(g)));
  }
  supervisor_flags f;
  f.shutdown_mode = auto_shutdown::all_significant;
  f.start_timeout = std::chrono::seconds(60);
  auto root = spawn_supervisor(sys, f, std::move(groups));
  caf::scoped_actor self{sys};
  self->monitor(*root);
  self->receive([](caf::down_msg&) {});
  const auto stop = bench_clock::now();
  self->send_exit(sink, caf::exit_reason::user_shutdown);
  return std::chrono::duration<double>(stop - start).count();
}

double run_direct(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                  std::size_t shards) {
  batch_config cfg;
  cfg.checkpoint_interval = std::chrono::milliseconds(100);
  const auto start = bench_clock::now();
  std::vector<std::unique_ptr<batch_processor>> procs;
  for (std::size_t s = 0; s < shards; ++s)
    procs.push_back(std::make_unique<batch_processor>(
      "shard-" + std::to_string(s), std::make_unique<null_flusher>(1000), cfg, bench_clock::now()));
  std::size_t checkpoints = 0;
  for (std::size_t b = 0; b < per_shard_batches; ++b)
    for (auto& p : procs)
      checkpoints += p->process(pool[b], bench_clock::now()) ? 1 : 0;
  for (auto& p : procs)
    checkpoints += p->shutdown(shutdown_reason::terminate, bench_clock::now()) ? 1 : 0;
  const auto stop = bench_clock::now();
  if (checkpoints == 0)
    std::puts("no checkpoints?");
  return std::chrono::duration<double>(stop - start).count();
}

struct summary {
  double median, min, max;
};

summary summarize(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return {xs[xs.size() / 2], xs.front(), xs.back()};
}

} // namespace

// Arguments: [records (4,000,000)] [runs (3)] [shards: only this one of 1, 64, 1024, 10000]
int main(int argc, char** argv) {
  const std::size_t target_records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4'000'000;
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  const std::size_t only = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0; // one shard count
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::printf(
    "building %zu records (100-byte data, 56-digit sequence numbers, batches of %zu)...\n",
    target_records, batch_size);
  const auto batches = bench::make_batches(target_records, batch_size);
  std::printf(
    "\nshard actors vs. the direct loop; %u CAF worker threads; %d runs; median (min..max)\n\n",
    threads, runs);
  std::printf("%-8s %24s %24s %8s\n", "shards", "actors M rec/s", "direct loop M rec/s", "ratio");
  for (std::size_t shards :
       {std::size_t{1}, std::size_t{64}, std::size_t{1024}, std::size_t{10000}}) {
    if (only != 0 && shards != only)
      continue;
    const auto per_shard = std::min(batches.size(),
                                    std::max<std::size_t>(4, target_records / batch_size / shards));
    const double records = static_cast<double>(per_shard * batch_size * shards);
    std::vector<double> a;
    std::vector<double> d;
    for (int r = 0; r < runs; ++r) {
      a.push_back(records / run_actors(batches, per_shard, shards, threads) / 1e6);
      d.push_back(records / run_direct(batches, per_shard, shards) / 1e6);
    }
    const auto sa = summarize(a);
    const auto sd = summarize(d);
    std::printf("%-8zu %8.1f (%5.1f..%5.1f)    %8.1f (%5.1f..%5.1f)    %6.2fx\n", shards, sa.median,
                sa.min, sa.max, sd.median, sd.min, sd.max, sa.median / sd.median);
    std::printf("POINT\t%zu\t%.2f\t%.2f\n", shards, sa.median, sd.median);
    if (shards >= 1024) {
      // Start-up and shutdown of the tree (3 actors per shard, started one group after another as
      // OTP does) dominate at many shards: time an empty job and report the rate without it too.
      std::vector<double> empty;
      for (int r = 0; r < runs; ++r)
        empty.push_back(run_actors(batches, 0, shards, threads));
      const auto overhead = summarize(empty).median;
      const auto steady = records / std::max(1e-9, records / (sa.median * 1e6) - overhead) / 1e6;
      std::printf(
        "         %.0f records; start-up and shutdown of %zu shard groups: %.2f s; without "
        "it: %.1f M rec/s\n",
        records, shards, overhead, steady);
      std::printf("ROW\tactors-%s-steady\t%.1f\t%.1f\tM rec/s without %.2f s of start-up\t-\n",
                  shards == 1024 ? "1k" : "10k", steady, sd.median, overhead);
    }
    if (shards >= 64) {
      const char* target = shards == 64 ? "M rec/s (target >= 20, >= 0.6x)"
                                        : (shards == 10000 ? "M rec/s (target >= 10)" : "M rec/s");
      std::printf("ROW\tactors-%s\t%.1f\t%.1f\t%s\t%.1f..%.1f\n",
                  shards == 64 ? "64" : (shards == 1024 ? "1k" : "10k"), sa.median, sd.median,
                  target, sa.min, sa.max);
    }
  }
  return 0;
}
