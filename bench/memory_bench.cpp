// bench/memory_bench.cpp - memory of the runtime: per idle shard, and at peak under a slow sink.
//
// - memory-idle: RSS of 10,000 started shard groups (feeder + shard + group supervisor, push mode,
//   nothing pushed) minus the RSS before, per shard.
// - memory-slow-sink: 64 shards read 10,000,000 generated records (100-byte data) while their flusher
//   spends 10x the time the source takes per record; peak RSS of the process, and a check that every
//   record was made durable exactly as often as the ledger says (none lost).
// Prints ROW lines for bench/run.sh. Not a test.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/checkpoint_sink.hpp"
#include "actors/checkpoint_store.hpp"
#include "actors/runtime.hpp"
#include "actors/shard.hpp"
#include "actors/supervisor.hpp"
#include "flushers/null_flusher.hpp"

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

void idle_shards(std::size_t shards) {
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto rt = runtime::start(sys, {});
  const auto before = rss_kib();
  const auto start = bench_clock::now();
  for (std::size_t i = 0; i < shards; ++i) {
    shard_group_config g;
    g.shard.id = "idle-" + std::to_string(i);
    g.shard.make_flusher = null_flusher::factory(1000);
    g.shard.heartbeat_interval = std::chrono::milliseconds(0);
    if (auto err = (*rt)->start_shard(std::move(g))) {
      std::printf("start failed: %s\n", sys.render(err).c_str());
      return;
    }
  }
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  const auto after = rss_kib();
  const auto per = (after - before) / shards;
  std::printf("memory-idle: %zu idle shards: RSS %.1f -> %.1f MiB, %.2f KiB per shard (started in "
              "%.2f s)\n",
              shards, before / 1024, after / 1024, per, secs);
  std::printf("ROW\tmemory-idle\t%.2f\t-\tKiB/shard (target <= 16)\t-\n", per);
  (*rt)->shutdown();
}

// Makes records on demand: record i of a shard has sequence number i and 100 bytes of data.
class counting_source final : public record_source {
public:
  explicit counting_source(std::uint64_t n) : n_(n) {
  }
  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = after ? *after->base.to_uint64() + 1 : 0;
  }
  record_batch read(std::size_t max) override {
    std::vector<stream_record> xs;
    for (; xs.size() < max && pos_ < n_; ++pos_) {
      stream_record x;
      x.partition_key = "k";
      x.data.assign(100, 'x');
      x.sequence.base = sequence_base{pos_};
      xs.push_back(std::move(x));
    }
    return record_batch{std::move(xs)};
  }
  bool at_end() const override {
    return pos_ >= n_;
  }

private:
  std::uint64_t n_;
  std::uint64_t pos_ = 0;
};

// A flusher that spends `per_record` of CPU on each record it flushes, counting what it made durable.
class slow_flusher final : public flusher {
public:
  slow_flusher(std::chrono::nanoseconds per_record, std::shared_ptr<std::atomic<std::uint64_t>> done)
    : per_record_(per_record), done_(std::move(done)) {
  }
  add_result add(const stream_record&, flush_token t) override {
    if (pending_.size() >= 1000)
      return add_result::full;
    pending_.push_back(t);
    return add_result::added;
  }
  std::vector<flush_token> flush(flush_mode) override {
    const auto until = bench_clock::now() + per_record_ * pending_.size();
    while (bench_clock::now() < until) {
      // the sink is slow
    }
    done_->fetch_add(pending_.size());
    return std::exchange(pending_, {});
  }
  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  std::chrono::nanoseconds per_record_;
  std::shared_ptr<std::atomic<std::uint64_t>> done_;
  std::vector<flush_token> pending_;
};

void slow_sink(std::size_t shards, std::uint64_t records) {
  // Measure the source's own cost per record first, then make the flusher 10x slower.
  counting_source probe{100'000};
  const auto t0 = bench_clock::now();
  while (!probe.at_end())
    probe.read(500);
  const auto source_ns = std::chrono::duration<double, std::nano>(bench_clock::now() - t0).count() / 1e5;
  const auto flusher_cost = std::chrono::nanoseconds(static_cast<long>(10 * source_ns));
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto store = std::make_shared<memory_checkpoint_store>();
  runtime_config rcfg;
  rcfg.finite = true;
  rcfg.sink = spawn_checkpoint_sink(sys, store);
  auto rt = runtime::start(sys, rcfg);
  auto done = std::make_shared<std::atomic<std::uint64_t>>(0);
  const auto per_shard = records / shards;
  const auto start = bench_clock::now();
  for (std::size_t i = 0; i < shards; ++i) {
    shard_group_config g;
    g.shard.id = "slow-" + std::to_string(i);
    g.shard.make_flusher = [flusher_cost, done](const shard_id&) {
      return std::make_unique<slow_flusher>(flusher_cost, done);
    };
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(100);
    g.source = [per_shard] { return std::make_shared<counting_source>(per_shard); };
    g.finite = true;
    (*rt)->start_shard(std::move(g));
  }
  (*rt)->await(std::chrono::hours(1));
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  std::size_t at_end = 0;
  for (std::size_t i = 0; i < shards; ++i) {
    auto row = store->peek("slow-" + std::to_string(i));
    at_end += row && row->ended && row->position && *row->position->base.to_uint64() == per_shard - 1;
  }
  std::printf("memory-slow-sink: %zu shards, %llu records, source %.0f ns/record, flusher %lld "
              "ns/record: %.1f s, peak RSS %.1f MiB, %llu records durable, %zu/%zu shards "
              "checkpointed at their last record\n",
              shards, static_cast<unsigned long long>(per_shard * shards), source_ns,
              static_cast<long long>(flusher_cost.count()), secs, peak_rss_mib(),
              static_cast<unsigned long long>(done->load()), at_end, shards);
  std::printf("ROW\tmemory-slow-sink\t%.1f\t-\tMiB peak RSS (target <= 256), %s\t-\n", peak_rss_mib(),
              at_end == shards && done->load() >= per_shard * shards ? "no record lost"
                                                                      : "RECORDS MISSING");
}

} // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  if (what == "all" || what == "idle")
    idle_shards(10'000);
  if (what == "all" || what == "slow")
    slow_sink(64, argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10'000'000);
  return 0;
}
