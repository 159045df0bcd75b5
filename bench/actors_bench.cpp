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
// Prints records/s of both, the ratio, and the median and spread of several runs. Not a test, but
// each run checks its outcome: the tree ended by itself (did not give up) and every shard
// checkpointed its end at its last record; the direct loop checkpointed every shard at its last
// record. A run that fails prints why and no figure, and the bench exits 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "tests/support/generator_source.hpp"
#include "tests/support/realistic_records.hpp"
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

using testing::batches_source;

// The batches of one shard: the first `per_shard` of the pool.
std::vector<record_batch> first(const std::vector<record_batch>& pool, std::size_t per_shard) {
  return {pool.begin(),
          pool.begin() + static_cast<std::ptrdiff_t>(std::min(per_shard, pool.size()))};
}

// What one run took, or why it failed (then its time means nothing).
struct run_result {
  double seconds = 0;
  std::string failure;
};

// Returns why the tree's outcome is not "every shard checkpointed its end at its last record", or
// nothing.
std::string check_tree(const memory_checkpoint_store& store, std::size_t shards,
                       const std::vector<record_batch>& mine, const std::string& reason,
                       bool clean) {
  if (!clean)
    return "the supervision tree did not end by itself: " + reason;
  std::size_t bad = 0;
  std::string first;
  for (std::size_t s = 0; s < shards; ++s) {
    const auto id = "shard-" + std::to_string(s);
    const auto row = store.peek(id);
    const bool ok = row && row->ended
                    && (mine.empty() ? !row->position
                                     : row->position == mine.back().back().sequence);
    if (!ok && bad++ == 0)
      first = id;
  }
  if (bad > 0)
    return std::to_string(bad) + " of " + std::to_string(shards)
           + " shards did not checkpoint their end at their last record (first: " + first + ")";
  return {};
}

run_result run_actors(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                      std::size_t shards, unsigned threads) {
  caf::actor_system_config cfg;
  configure(cfg);
  cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{cfg};
  const auto mine = first(pool, per_shard_batches);
  const auto start = bench_clock::now();
  auto store = std::make_shared<memory_checkpoint_store>();
  auto sink = spawn_checkpoint_sink(sys, store);
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
  if (!root)
    return {0, "the root supervisor did not start: " + sys.render(root.error())};
  caf::scoped_actor self{sys};
  self->monitor(*root);
  caf::error reason;
  self->receive([&reason](caf::down_msg& m) { reason = m.reason; });
  const auto stop = bench_clock::now();
  // A finite tree ends by auto_shutdown (user_shutdown); anything else means it gave up or crashed.
  const bool clean = !reason || reason == caf::exit_reason::user_shutdown
                     || reason == caf::exit_reason::normal;
  // The sink answered every save before the shards ended, so the store is complete here.
  auto failure = check_tree(*store, shards, mine, sys.render(reason), clean);
  self->send_exit(sink, caf::exit_reason::user_shutdown);
  return {std::chrono::duration<double>(stop - start).count(), std::move(failure)};
}

run_result run_direct(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                      std::size_t shards) {
  batch_config cfg;
  cfg.checkpoint_interval = std::chrono::milliseconds(100);
  const auto start = bench_clock::now();
  std::vector<std::unique_ptr<batch_processor>> procs;
  for (std::size_t s = 0; s < shards; ++s)
    procs.push_back(std::make_unique<batch_processor>(
      "shard-" + std::to_string(s), std::make_unique<null_flusher>(1000), cfg, bench_clock::now()));
  for (std::size_t b = 0; b < per_shard_batches; ++b)
    for (auto& p : procs)
      p->process(pool[b], bench_clock::now());
  for (auto& p : procs)
    p->shutdown(shutdown_reason::terminate, bench_clock::now());
  const auto stop = bench_clock::now();
  run_result result{std::chrono::duration<double>(stop - start).count(), {}};
  if (per_shard_batches > 0) {
    const auto& last = pool[per_shard_batches - 1].back().sequence;
    for (auto& p : procs)
      if (p->stats().last_checkpoint != last) {
        result.failure = "the direct loop did not checkpoint every shard at its last record";
        break;
      }
  }
  return result;
}

// Returns the time of `r`, or prints why it failed and exits 1: a failed run has no figure.
double seconds_or_exit(const run_result& r, const char* side, std::size_t shards, int run) {
  if (r.failure.empty())
    return r.seconds;
  std::fprintf(stderr, "actors_bench: %s, %zu shards, run %d: %s; no figure\n", side, shards,
               run + 1, r.failure.c_str());
  std::exit(1);
}

struct summary {
  double median, min, max;
};

summary summarize(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return {xs[xs.size() / 2], xs.front(), xs.back()};
}

// Times an empty job of `shards` groups and prints the rate without its start-up and shutdown;
// returns false (and prints no figure) when the empty job took as long as the whole one.
bool steady_row(const std::vector<record_batch>& batches, std::size_t shards, unsigned threads,
                int runs, double records, double actors_median, double direct_median) {
  // Start-up and shutdown of the tree (3 actors per shard, started one group after another as
  // OTP does) dominate at many shards: time an empty job and report the rate without it too.
  std::vector<double> empty;
  for (int r = 0; r < runs; ++r)
    empty.push_back(
      seconds_or_exit(run_actors(batches, 0, shards, threads), "empty job", shards, r));
  const auto overhead = summarize(empty).median;
  const auto whole = records / (actors_median * 1e6);
  if (whole - overhead <= 0) {
    std::fprintf(stderr,
                 "actors_bench: %zu shards: start-up and shutdown (%.2f s) took as long as the "
                 "whole job (%.2f s); no steady figure\n",
                 shards, overhead, whole);
    return false;
  }
  const auto steady = records / (whole - overhead) / 1e6;
  std::printf("         %.0f records; start-up and shutdown of %zu shard groups: %.2f s; without "
              "it: %.1f M rec/s\n",
              records, shards, overhead, steady);
  std::printf("ROW\tactors-%s-steady\t%.1f\t%.1f\tM rec/s without %.2f s of start-up\t-\n",
              shards == 1024 ? "1k" : "10k", steady, direct_median, overhead);
  return true;
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
  const auto batches = testing::make_batches(target_records, batch_size);
  std::printf(
    "\nshard actors vs. the direct loop; %u CAF worker threads; %d runs; median (min..max)\n\n",
    threads, runs);
  std::printf("%-8s %24s %24s %8s\n", "shards", "actors M rec/s", "direct loop M rec/s", "ratio");
  bool impossible = false;
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
      a.push_back(
        records
        / seconds_or_exit(run_actors(batches, per_shard, shards, threads), "actors", shards, r)
        / 1e6);
      d.push_back(
        records / seconds_or_exit(run_direct(batches, per_shard, shards), "direct loop", shards, r)
        / 1e6);
    }
    const auto sa = summarize(a);
    const auto sd = summarize(d);
    std::printf("%-8zu %8.1f (%5.1f..%5.1f)    %8.1f (%5.1f..%5.1f)    %6.2fx\n", shards, sa.median,
                sa.min, sa.max, sd.median, sd.min, sd.max, sa.median / sd.median);
    std::printf("POINT\t%zu\t%.2f\t%.2f\n", shards, sa.median, sd.median);
    if (shards >= 1024) {
      if (!steady_row(batches, shards, threads, runs, records, sa.median, sd.median))
        impossible = true;
    }
    if (shards >= 64) {
      const char* target = shards == 64 ? "M rec/s (target >= 20, >= 0.6x)"
                                        : (shards == 10000 ? "M rec/s (target >= 10)" : "M rec/s");
      std::printf("ROW\tactors-%s\t%.1f\t%.1f\t%s\t%.1f..%.1f\n",
                  shards == 64 ? "64" : (shards == 1024 ? "1k" : "10k"), sa.median, sd.median,
                  target, sa.min, sa.max);
    }
  }
  return impossible ? 1 : 0;
}
