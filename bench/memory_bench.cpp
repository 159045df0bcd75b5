// bench/memory_bench.cpp - memory of the runtime: per idle shard, and at peak under a slow sink.
//
// - memory-idle: RSS of 10,000 started shard groups (feeder + shard + group supervisor, push mode,
//   nothing pushed) minus the RSS before, per shard.
// - memory-slow-sink: 64 shards read 10,000,000 generated records (100-byte data) while their flusher
//   spends 10x the time the source takes per record; peak RSS of the process, and a check that every
//   record was made durable exactly as often as the ledger says (none lost).
// - memory-slow-sink-large: the same with 8 shards of 256 KiB records and a flusher that is full at
//   8 MiB; the subject is the runtime's default credit (records and bytes), the baseline the same
//   run with credit counted in records only (as before byte credit). One process each (`slow-large`,
//   `slow-large-records-only`): peak RSS is per process.
// Each row runs in a process of its own (`all` forks one per row), since peak RSS is per process.
// Prints ROW lines for bench/run.sh. Not a test, but a run whose shards do not start, do not stop or
// end cleanly, or do not all checkpoint at their last record prints why and no figure (a
// `FAILED<TAB>row<TAB>why` line), and the bench exits 1.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "tests/support/generator_source.hpp"

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/flushers/null_flusher.hpp>

using namespace shardflow;
using bench_clock = std::chrono::steady_clock;

namespace {

double rss_kib() {
  std::ifstream in{"/proc/self/statm"};
  long pages = 0;
  long resident = 0;
  in >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024.0);
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

caf::actor_system_config& system_config(caf::actor_system_config& cfg) {
  configure(cfg);
  cfg.set("scheduler.max-threads", std::max(1u, std::thread::hardware_concurrency()));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

// Returns false (after saying why) when a shard did not start: then it prints no figure.
bool idle_shards(std::size_t shards) {
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto rt = runtime::start(sys, {});
  if (!rt) {
    std::fprintf(stderr, "memory-idle: the runtime did not start: %s; no figure\n",
                 sys.render(rt.error()).c_str());
    std::printf("FAILED\tmemory-idle\tthe runtime did not start\n");
    return false;
  }
  const auto before = rss_kib();
  const auto start = bench_clock::now();
  for (std::size_t i = 0; i < shards; ++i) {
    shard_group_config g;
    g.shard.id = "idle-" + std::to_string(i);
    g.shard.make_flusher = null_flusher::factory(1000);
    g.shard.heartbeat_interval = std::chrono::milliseconds(0);
    if (auto err = (*rt)->start_shard(std::move(g))) {
      std::fprintf(stderr, "memory-idle: shard %zu did not start: %s; no figure\n", i,
                   sys.render(err).c_str());
      std::printf("FAILED\tmemory-idle\tshard %zu did not start\n", i);
      return false;
    }
  }
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  const auto after = rss_kib();
  const auto per = (after - before) / shards;
  std::printf("memory-idle: %zu idle shards: RSS %.1f -> %.1f MiB, %.2f KiB per shard (started in "
              "%.2f s)\n",
              shards, before / 1024, after / 1024, per, secs);
  if (auto err = (*rt)->shutdown()) {
    std::fprintf(stderr, "memory-idle: the idle shards did not stop cleanly: %s; no figure\n",
                 sys.render(err).c_str());
    std::printf("FAILED\tmemory-idle\tthe idle shards did not stop cleanly\n");
    return false;
  }
  std::printf("ROW\tmemory-idle\t%.2f\t-\tKiB/shard (target <= 8)\t-\n", per);
  return true;
}

// A flusher that spends `per_record` of CPU on each record it flushes, counting what it made durable;
// full at 1,000 records or `max_bytes` of data.
class slow_flusher final : public flusher {
public:
  slow_flusher(std::chrono::nanoseconds per_record,
               std::shared_ptr<std::atomic<std::uint64_t>> done, std::size_t max_bytes = SIZE_MAX)
    : per_record_(per_record), done_(std::move(done)), max_bytes_(max_bytes) {
  }
  add_result add(const stream_record& x, flush_token t) override {
    if (pending_.size() >= 1000 || (!pending_.empty() && bytes_ + x.data.size() > max_bytes_))
      return add_result::full;
    pending_.push_back(t);
    bytes_ += x.data.size();
    return add_result::added;
  }
  std::vector<flush_token> flush(flush_mode) override {
    const auto until = bench_clock::now() + per_record_ * pending_.size();
    while (bench_clock::now() < until) {
      // the sink is slow
    }
    done_->fetch_add(pending_.size());
    bytes_ = 0;
    return std::exchange(pending_, {});
  }
  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  std::chrono::nanoseconds per_record_;
  std::shared_ptr<std::atomic<std::uint64_t>> done_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::vector<flush_token> pending_;
};

// What one slow-sink run is made of.
struct slow_sink_config {
  const char* row;
  std::size_t shards;
  std::uint64_t records;          // in total
  std::size_t record_bytes = 100; // data per record
  std::size_t flusher_bytes = SIZE_MAX;
  bool byte_credit = true; // false: the shards' credit counts records only
};

// Returns what the flusher spends per record: 10x the source's own cost per record, measured.
std::chrono::nanoseconds flusher_cost_of(const slow_sink_config& c, double& source_ns) {
  const std::uint64_t probe_records = std::max<std::uint64_t>(1000, 10'000'000 / c.record_bytes);
  testing::sized_source probe{probe_records, c.record_bytes, "k"};
  const auto t0 = bench_clock::now();
  while (!probe.at_end())
    probe.read(500);
  source_ns = std::chrono::duration<double, std::nano>(bench_clock::now() - t0).count()
              / static_cast<double>(probe_records);
  return std::chrono::nanoseconds(static_cast<long>(10 * source_ns));
}

// Starts the run's shards; returns false (after saying why) when one did not start.
bool start_slow_shards(runtime& rt, const slow_sink_config& c, std::chrono::nanoseconds cost,
                       const std::shared_ptr<std::atomic<std::uint64_t>>& done) {
  const auto per_shard = c.records / c.shards;
  for (std::size_t i = 0; i < c.shards; ++i) {
    shard_group_config g;
    g.shard.id = "slow-" + std::to_string(i);
    g.shard.make_flusher = [cost, done, max = c.flusher_bytes](const shard_id&) {
      return std::make_unique<slow_flusher>(cost, done, max);
    };
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(100);
    if (!c.byte_credit)
      g.shard.credit_bytes = SIZE_MAX / 2;
    g.source = [per_shard, bytes = c.record_bytes] {
      return std::make_shared<testing::sized_source>(per_shard, bytes, "k");
    };
    g.finite = true;
    if (auto err = rt.start_shard(std::move(g))) {
      std::fprintf(stderr, "%s: shard %zu did not start: %s; no figure\n", c.row, i,
                   to_string(err).c_str());
      std::printf("FAILED\t%s\tshard %zu did not start\n", c.row, i);
      return false;
    }
  }
  return true;
}

// Returns false (after saying why) when a shard did not start, the run did not end cleanly, or a
// shard did not checkpoint at its last record: then it prints no figure.
bool slow_sink(const slow_sink_config& c) {
  double source_ns = 0;
  const auto flusher_cost = flusher_cost_of(c, source_ns);
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto store = std::make_shared<memory_checkpoint_store>();
  runtime_config rcfg;
  rcfg.finite = true;
  rcfg.sink = spawn_checkpoint_sink(sys, store);
  auto rt = runtime::start(sys, rcfg);
  if (!rt) {
    std::fprintf(stderr, "%s: the runtime did not start: %s; no figure\n", c.row,
                 sys.render(rt.error()).c_str());
    std::printf("FAILED\t%s\tthe runtime did not start\n", c.row);
    return false;
  }
  auto done = std::make_shared<std::atomic<std::uint64_t>>(0);
  const auto per_shard = c.records / c.shards;
  const auto start = bench_clock::now();
  if (!start_slow_shards(**rt, c, flusher_cost, done))
    return false;
  const auto outcome = (*rt)->await(std::chrono::hours(1));
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  std::size_t at_end = 0;
  for (std::size_t i = 0; i < c.shards; ++i) {
    auto row = store->peek("slow-" + std::to_string(i));
    at_end += row && row->ended && row->position
              && *row->position->base.to_uint64() == per_shard - 1;
  }
  std::printf(
    "%s: %zu shards, %llu records of %zu bytes, credit %s, source %.0f ns/record, flusher "
    "%lld ns/record: %.1f s, peak RSS %.1f MiB, %llu records durable, %zu/%zu shards "
    "checkpointed at their last record\n",
    c.row, c.shards, static_cast<unsigned long long>(per_shard * c.shards), c.record_bytes,
    c.byte_credit ? "in records and bytes" : "in records only", source_ns,
    static_cast<long long>(flusher_cost.count()), secs, peak_rss_mib(),
    static_cast<unsigned long long>(done->load()), at_end, c.shards);
  if (!outcome.clean() || at_end != c.shards || done->load() < per_shard * c.shards) {
    std::fprintf(stderr,
                 "%s: the run %s, %zu of %zu shards checkpointed at their last record; no "
                 "figure\n",
                 c.row, outcome.clean() ? "ended cleanly" : "did NOT end cleanly", at_end,
                 c.shards);
    std::printf("FAILED\t%s\t%zu of %zu shards checkpointed at their last record%s\n", c.row,
                at_end, c.shards, outcome.clean() ? "" : ", not clean");
    return false;
  }
  std::printf("FIGURE\t%s\t%.1f\n", c.row, peak_rss_mib());
  if (c.record_bytes == 100)
    std::printf("ROW\t%s\t%.1f\t-\tMiB peak RSS (target <= 128), no record lost\t-\n", c.row,
                peak_rss_mib());
  return true;
}

} // namespace

// Runs `row`, in a child process when `own_process`, and returns whether it succeeded. A peak RSS
// is the process's (getrusage), so a row that followed another in the same process would report
// the other's peak (the slow sink's 158 MiB of earlier runs was the 10,000 idle groups' peak; alone
// it was 20). `all` forks per row; a row asked for alone (`idle`, `slow`) runs in this process, so
// that a profiler that does not follow a fork (heaptrack) sees it.
template <class F>
bool run_row(bool own_process, F row) {
  if (!own_process)
    return row();
  std::fflush(stdout);
  std::fflush(stderr);
  const auto pid = fork();
  if (pid < 0) {
    std::perror("memory_bench: fork");
    return false;
  }
  if (pid == 0) {
    const bool ok = row();
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid)
    return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  bool ok = true;
  if (what == "all" || what == "idle")
    ok = run_row(what == "all", [] { return idle_shards(10'000); }) && ok;
  if (what == "all" || what == "slow") {
    const auto records = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10'000'000;
    ok = run_row(what == "all", [records] { return slow_sink({"memory-slow-sink", 64, records}); })
         && ok;
  }
  const std::uint64_t large
    = argc > 2 && what != "all" && what != "slow" ? std::strtoull(argv[2], nullptr, 10) : 16'000;
  if (what == "slow-large")
    ok = slow_sink({"memory-slow-sink-large", 8, large, 256 << 10, 8 << 20, true});
  if (what == "slow-large-records-only")
    ok = slow_sink({"memory-slow-sink-large-baseline", 8, large, 256 << 10, 8 << 20, false});
  return ok ? 0 : 1;
}
