// bench/kafka_bench.cpp - the Kafka source and flusher against librdkafka's mock cluster, each with
// a plain librdkafka loop as its baseline in the same run. Usage: kafka_bench MODE [RUNS]
//
// - consume: 32 partitions x 40,000 records of 100 bytes, consumed by a consumer-group member
//   whose partitions are shard actors with the null flusher (kafka_consumer_group; flush and
//   checkpoint intervals 100 ms), vs. a plain
//   KafkaConsumer loop in the same group settings that only counts. Timed from the member's first
//   assignment (the mock's join takes a fixed 3 s, the same for both) to the last record: for the
//   subject, until every shard's checkpoint at its last offset was committed.
// - produce: 1,280,000 records of 100 bytes through 4 shards with the Kafka flusher (acks=all,
//   idempotence; a producer each) vs. 4 threads, each a plain Producer loop with the same settings,
//   both into a 16-partition topic,
//   timed until every delivery report came back (the subject: every shard checkpointed at its last
//   record, which needs every token back from a delivery report).
// - slow-sink: 32 partitions x 40,000 records (128 MB of data) through a consumer-group member
//   whose sink takes records at a tenth of the rate a plain consumer loop reads them from the same
//   mock (measured first on a smaller topic); peak RSS of the process with the source's defaults,
//   and every offset committed. The bounds are per partition: a shard holds its credit of 10,000
//   records and librdkafka's prefetch is sized from it (kafka/consumer_group.hpp: a quarter of the
//   credit queued, 256 KiB fetches, 1 MiB responses), so this row shows what 32 of them cost; the
//   pause above `pause_above` = 50,000 queued messages never triggers here.
//
// The mock runs in a child process (forked before this process makes a thread; it produces the
// data itself and serves until SIGTERM), so neither its memory nor its producer counts here.
// Prints ROW lines for bench/run.sh. Not a test, but a run whose subject does not deliver or commit
// every record in time prints why and no figure (a `FAILED<TAB>row<TAB>why` line) and exits 1.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "tests/kafka/mock_cluster.hpp"
#include "tests/support/generator_source.hpp"

#include <shardflow/actors/runtime.hpp>
#include <shardflow/flushers/null_flusher.hpp>
#include <shardflow/kafka/consumer_group.hpp>
#include <shardflow/kafka/kafka_flusher.hpp>

using namespace shardflow;
using namespace std::chrono_literals;
using bench_clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t record_bytes = 100;
constexpr std::int64_t per_partition = 40'000; // the mock keeps at most ~46k x 100 B per partition

double seconds_since(bench_clock::time_point t0) {
  return std::chrono::duration<double>(bench_clock::now() - t0).count();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

int failed(const char* row, const std::string& why) {
  std::fprintf(stderr, "%s: %s; no figure\n", row, why.c_str());
  std::printf("FAILED\t%s\t%s\n", row, why.c_str());
  return 1;
}

// -- the mock, in a child process ----------------------------------------------------------------

struct topic_spec {
  std::string name;
  int partitions;
  std::int64_t records_per_partition; // produced before the mock says it is ready
};

// Produces `per` records of 100 bytes into each partition of `t` (explicitly, so that each holds
// exactly `per`); returns false when a delivery failed.
bool fill(const std::string& brokers, const topic_spec& t) {
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  std::string why;
  conf->set("bootstrap.servers", brokers, why);
  conf->set("linger.ms", "5", why);
  conf->set("log_level", "3", why);
  std::unique_ptr<RdKafka::Producer> p{RdKafka::Producer::create(conf.get(), why)};
  if (!p)
    return false;
  std::string value(record_bytes, 'x');
  for (int part = 0; part < t.partitions; ++part)
    for (std::int64_t i = 0; i < t.records_per_partition; ++i) {
      auto key = std::to_string(i);
      while (p->produce(t.name, part, RdKafka::Producer::RK_MSG_COPY, value.data(), value.size(),
                        key.data(), key.size(), 0, nullptr)
             == RdKafka::ERR__QUEUE_FULL)
        p->poll(10);
    }
  return p->flush(120'000) == RdKafka::ERR_NO_ERROR && p->outq_len() == 0;
}

// A mock cluster (1 broker) in a child process with `topics` filled; ended by its PID.
class mock_process {
public:
  explicit mock_process(const std::vector<topic_spec>& topics) {
    int fds[2];
    if (pipe(fds) != 0)
      return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      sigset_t stops;
      sigemptyset(&stops);
      sigaddset(&stops, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &stops, nullptr); // before librdkafka's threads inherit the mask
      std::string line = "-\n";
      {
        testing::mock_kafka mock{1};
        bool ok = true;
        for (const auto& t : topics) {
          mock.create_topic(t.name, t.partitions);
          ok = ok && (t.records_per_partition == 0 || fill(mock.bootstraps(), t));
        }
        if (ok)
          line = mock.bootstraps() + "\n";
        if (write(fds[1], line.data(), line.size()) < 0)
          _exit(1);
        int sig = 0;
        sigwait(&stops, &sig);
      }
      _exit(0);
    }
    close(fds[1]);
    char buf[256];
    auto n = pid_ > 0 ? read(fds[0], buf, sizeof(buf) - 1) : -1;
    close(fds[0]);
    if (n > 1 && buf[0] != '-')
      bootstraps_.assign(buf, static_cast<std::size_t>(n - 1));
  }

  ~mock_process() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  /// bootstrap.servers, or empty when the mock did not come up with its data.
  const std::string& bootstraps() const noexcept {
    return bootstraps_;
  }

private:
  pid_t pid_ = -1;
  std::string bootstraps_;
};

// -- consumers -----------------------------------------------------------------------------------

// The consumer settings of both sides (the mock's group timings; a prefetch large enough that
// fetching never pauses for a second, reference kafka-librdkafka-mock.md section 4).
kafka_properties consumer_properties(bool large_prefetch) {
  auto p = testing::group_properties();
  p["log_level"] = "3";
  if (large_prefetch)
    p["queued.min.messages"] = "1000000";
  return p;
}

struct assign_clock final : RdKafka::RebalanceCb {
  std::atomic<bool> assigned{false};
  bench_clock::time_point at;

  void rebalance_cb(RdKafka::KafkaConsumer* c, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& parts) override {
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      if (!assigned.exchange(true))
        at = bench_clock::now();
      c->assign(parts);
    } else {
      c->unassign();
    }
  }
};

// The baseline: a plain consumer loop in group `group` that counts `total` records of `topic`;
// returns records/s from the first assignment, or 0 when it did not see them all in 60 s.
double plain_consume(const std::string& brokers, const std::string& topic,
                     const std::string& group, std::int64_t total, bool large_prefetch) {
  auto conf = make_kafka_conf(consumer_properties(large_prefetch), "consumer");
  assign_clock clock;
  std::string why;
  conf->set("bootstrap.servers", brokers, why);
  conf->set("group.id", group, why);
  conf->set("enable.auto.commit", "false", why);
  conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(&clock), why);
  std::unique_ptr<RdKafka::KafkaConsumer> c{RdKafka::KafkaConsumer::create(conf.get(), why)};
  if (!c || c->subscribe({topic}) != RdKafka::ERR_NO_ERROR)
    return 0;
  std::int64_t n = 0;
  const auto limit = bench_clock::now() + 60s;
  while (n < total && bench_clock::now() < limit) {
    std::unique_ptr<RdKafka::Message> m{c->consume(100)};
    if (m->err() == RdKafka::ERR_NO_ERROR)
      ++n;
  }
  const auto secs = std::chrono::duration<double>(bench_clock::now() - clock.at).count();
  c->close();
  return n == total ? static_cast<double>(total) / secs : 0;
}

caf::actor_system_config& system_config(caf::actor_system_config& cfg) {
  configure(cfg);
  cfg.set("scheduler.max-threads", std::max(1u, std::thread::hardware_concurrency()));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

std::unique_ptr<runtime> quiet_runtime(caf::actor_system& sys, bool finite) {
  runtime_config rc;
  rc.finite = finite;
  rc.log = [](log_level, std::string_view) {};
  auto rt = runtime::start(sys, rc);
  return rt ? std::move(*rt) : nullptr;
}

// Whether every shard of `topic`'s `partitions` has its checkpoint at offset `last` acknowledged.
bool all_acked(runtime& rt, const std::string& topic, int partitions, std::uint64_t last) {
  for (int p = 0; p < partitions; ++p) {
    auto m = rt.meters(kafka_shard_id(topic, p));
    if (!m || m->acked_position.load() != last)
      return false;
  }
  return true;
}

// The subject of `consume` and `slow-sink`: a group member with shards made by `make`; returns
// records/s from its first assignment until every partition's last offset was committed, or 0
// (after saying why on stderr) when that took longer than `limit`.
double group_consume(const std::string& brokers, const std::string& topic, int partitions,
                     const std::string& group, flusher_factory make, bool large_prefetch,
                     std::chrono::seconds limit) {
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto rt = quiet_runtime(sys, false);
  if (!rt)
    return 0;
  kafka_source_config k;
  k.brokers = brokers;
  k.topics = {topic};
  k.group = group;
  k.properties = consumer_properties(large_prefetch);
  k.log = [](log_level, std::string_view) {};
  shard_group_config tpl;
  tpl.shard.make_flusher = std::move(make);
  tpl.shard.batch.flush_interval = 100ms;
  tpl.shard.batch.checkpoint_interval = 100ms;
  tpl.report = [](const std::string&) {};
  auto g = kafka_consumer_group::start(*rt, k, tpl);
  const auto until = bench_clock::now() + limit;
  while (g->assignments() == 0 && bench_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  const auto t0 = bench_clock::now();
  const auto last = static_cast<std::uint64_t>(per_partition - 1);
  while (!all_acked(*rt, topic, partitions, last) && bench_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  const auto secs = seconds_since(t0);
  bool ok = all_acked(*rt, topic, partitions, last);
  for (int p = 0; ok && p < partitions; ++p)
    ok = g->store()->committed(kafka_shard_id(topic, p)).value_or(-1) == per_partition;
  if (!ok)
    std::fprintf(stderr, "group %s: not every partition committed at its end within %lld s (%s)\n",
                 group.c_str(), static_cast<long long>(limit.count()), g->failure().c_str());
  g->stop();
  rt->shutdown();
  return ok ? static_cast<double>(per_partition) * partitions / secs : 0;
}

int consume(int runs) {
  const char* row = "kafka-consume";
  constexpr int partitions = 32;
  mock_process mock{{{"events", partitions, per_partition}}};
  if (mock.bootstraps().empty())
    return failed(row, "the mock cluster did not come up with its records");
  std::vector<double> subject;
  std::vector<double> baseline;
  const auto total = per_partition * partitions;
  for (int i = 0; i < runs; ++i) {
    auto b = plain_consume(mock.bootstraps(), "events", "base-" + std::to_string(i), total, true);
    if (b == 0)
      return failed(row, "the plain consumer loop did not read every record in 60 s");
    auto s = group_consume(mock.bootstraps(), "events", partitions, "sub-" + std::to_string(i),
                           null_flusher::factory(1000), true, 60s);
    if (s == 0)
      return failed(row, "the group did not commit every partition's last offset in 60 s");
    subject.push_back(s / 1e6);
    baseline.push_back(b / 1e6);
    std::printf("kafka-consume run %d: shard actors + null flusher %.2f M rec/s, plain consumer "
                "loop %.2f M rec/s (%lld records)\n",
                i + 1, s / 1e6, b / 1e6, static_cast<long long>(total));
  }
  std::printf("ROW\t%s\t%.2f\t%.2f\tM records/s, 32 partitions of 100 B records (target >= "
              "0.7x)\t%.2f..%.2f\n",
              row, median(subject), median(baseline),
              *std::min_element(subject.begin(), subject.end()),
              *std::max_element(subject.begin(), subject.end()));
  return 0;
}

// -- producers -----------------------------------------------------------------------------------

kafka_properties producer_properties() {
  return {{"log_level", "3"}};
}

// One plain producer with the flusher's settings (acks=all, idempotence) producing `count`
// records; returns whether every delivery report came back ok.
bool plain_producer(const std::string& brokers, const std::string& topic, std::uint64_t count,
                    const std::string& key) {
  struct counter final : RdKafka::DeliveryReportCb {
    std::uint64_t ok = 0;
    void dr_cb(RdKafka::Message& m) override {
      ok += m.err() == RdKafka::ERR_NO_ERROR ? 1 : 0;
    }
  } reports;
  auto conf = make_kafka_conf(producer_properties(), "producer");
  std::string why;
  conf->set("bootstrap.servers", brokers, why);
  conf->set("acks", "all", why);
  conf->set("enable.idempotence", "true", why);
  conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&reports), why);
  std::unique_ptr<RdKafka::Producer> p{RdKafka::Producer::create(conf.get(), why)};
  if (!p)
    return false;
  std::string value(record_bytes, 'x');
  for (std::uint64_t i = 0; i < count; ++i) {
    while (p->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                      value.data(), value.size(), key.data(), key.size(), 0, nullptr)
           == RdKafka::ERR__QUEUE_FULL)
      p->poll(1);
    p->poll(0);
  }
  p->flush(60'000);
  return reports.ok == count;
}

// The baseline: `producers` plain producers (as many as the subject's shards, each a thread with a
// producer of its own, keyed like the shard's records); records/s until every delivery report
// came back ok, or 0.
double plain_produce(const std::string& brokers, const std::string& topic, std::size_t producers,
                     std::uint64_t per_producer) {
  std::vector<std::thread> threads;
  std::atomic<std::size_t> ok{0};
  const auto t0 = bench_clock::now();
  for (std::size_t i = 0; i < producers; ++i)
    threads.emplace_back([&, i] {
      ok += plain_producer(brokers, topic, per_producer, std::to_string(i)) ? 1 : 0;
    });
  for (auto& t : threads)
    t.join();
  const auto secs = seconds_since(t0);
  return ok == producers ? static_cast<double>(per_producer * producers) / secs : 0;
}

// The subject: `shards` finite shards of sized records into the Kafka flusher; records/s until
// every shard checkpointed at its last record, or 0.
double flusher_produce(const std::string& brokers, const std::string& topic, std::size_t shards,
                       std::uint64_t per_shard) {
  caf::actor_system_config cfg;
  caf::actor_system sys{system_config(cfg)};
  auto rt = quiet_runtime(sys, true);
  if (!rt)
    return 0;
  kafka_flusher_config out;
  out.brokers = brokers;
  out.topic = topic;
  out.properties = producer_properties();
  const auto t0 = bench_clock::now();
  for (std::size_t i = 0; i < shards; ++i) {
    shard_group_config g;
    g.shard.id = "produce-" + std::to_string(i);
    g.shard.make_flusher = kafka_flusher_factory(out);
    g.shard.batch.checkpoint_interval = 100ms;
    g.source = [per_shard, i] {
      return std::make_shared<testing::sized_source>(per_shard, record_bytes, std::to_string(i));
    };
    g.finite = true;
    g.report = [](const std::string&) {};
    if (rt->start_shard(std::move(g)))
      return 0;
  }
  auto ok = [&] {
    for (std::size_t i = 0; i < shards; ++i) {
      auto m = rt->meters("produce-" + std::to_string(i));
      if (!m || m->acked_position.load() != per_shard - 1)
        return false;
    }
    return true;
  };
  const auto until = t0 + 120s;
  while (!ok() && bench_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  const auto secs = seconds_since(t0);
  const bool done = ok();
  rt->shutdown();
  return done ? static_cast<double>(per_shard * shards) / secs : 0;
}

int produce(int runs) {
  const char* row = "kafka-produce";
  constexpr std::size_t shards = 4;
  constexpr std::uint64_t per_shard = 320'000;
  mock_process mock{{{"out", 16, 0}}};
  if (mock.bootstraps().empty())
    return failed(row, "the mock cluster did not come up");
  std::vector<double> subject;
  std::vector<double> baseline;
  for (int i = 0; i < runs; ++i) {
    auto b = plain_produce(mock.bootstraps(), "out", shards, per_shard);
    if (b == 0)
      return failed(row, "the plain producer loop did not get every delivery report");
    auto s = flusher_produce(mock.bootstraps(), "out", shards, per_shard);
    if (s == 0)
      return failed(row, "the Kafka flusher's shards did not all checkpoint their last record");
    subject.push_back(s / 1e6);
    baseline.push_back(b / 1e6);
    std::printf("kafka-produce run %d: 4 shards + Kafka flusher %.2f M rec/s, 4 plain producer "
                "loops %.2f M rec/s (%llu records, acks=all, idempotent)\n",
                i + 1, s / 1e6, b / 1e6, static_cast<unsigned long long>(shards * per_shard));
  }
  std::printf("ROW\t%s\t%.2f\t%.2f\tM records/s delivered, 100 B records, acks=all (target >= "
              "0.7x)\t%.2f..%.2f\n",
              row, median(subject), median(baseline),
              *std::min_element(subject.begin(), subject.end()),
              *std::max_element(subject.begin(), subject.end()));
  return 0;
}

// -- a slow sink ---------------------------------------------------------------------------------

// A rate every slow flusher shares: records pass at `per_second` at most.
struct rate_limit {
  std::mutex mtx;
  bench_clock::time_point next = bench_clock::now();
  std::chrono::nanoseconds per_record;
  std::atomic<std::uint64_t> passed{0};

  explicit rate_limit(double per_second)
    : per_record(static_cast<long>(1e9 / per_second)) {
    // nop
  }

  void take(std::size_t n) {
    bench_clock::time_point until;
    {
      std::lock_guard<std::mutex> guard{mtx};
      next = std::max(next, bench_clock::now()) + per_record * n;
      until = next;
    }
    std::this_thread::sleep_until(until);
    passed += n;
  }
};

class slow_flusher final : public flusher {
public:
  explicit slow_flusher(std::shared_ptr<rate_limit> limit) : limit_(std::move(limit)) {
  }
  add_result add(const stream_record&, flush_token t) override {
    if (pending_.size() >= 1000)
      return add_result::full;
    pending_.push_back(t);
    return add_result::added;
  }
  std::vector<flush_token> flush(flush_mode) override {
    limit_->take(pending_.size());
    return std::exchange(pending_, {});
  }
  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  std::shared_ptr<rate_limit> limit_;
  std::vector<flush_token> pending_;
};

int slow_sink() {
  const char* row = "kafka-slow-sink";
  constexpr int partitions = 32;
  mock_process mock{{{"probe", 4, per_partition}, {"events", partitions, per_partition}}};
  if (mock.bootstraps().empty())
    return failed(row, "the mock cluster did not come up with its records");
  auto broker_rate = plain_consume(mock.bootstraps(), "probe", "probe", per_partition * 4, false);
  if (broker_rate == 0)
    return failed(row, "the plain consumer loop did not read the probe topic in 60 s");
  auto limit = std::make_shared<rate_limit>(broker_rate / 10);
  auto rate = group_consume(
    mock.bootstraps(), "events", partitions, "slow",
    [limit](const shard_id&) { return std::make_unique<slow_flusher>(limit); }, false, 300s);
  const auto total = static_cast<std::uint64_t>(per_partition) * partitions;
  std::printf("kafka-slow-sink: %llu records of 100 B through a sink at %.0f rec/s (the broker "
              "gives %.0f rec/s to a plain loop): %.0f rec/s, %llu records flushed, peak RSS "
              "%.1f MiB\n",
              static_cast<unsigned long long>(total), broker_rate / 10, broker_rate, rate,
              static_cast<unsigned long long>(limit->passed.load()), peak_rss_mib());
  if (rate == 0)
    return failed(row, "the group did not commit every partition's last offset in 300 s");
  if (limit->passed.load() < total)
    return failed(row, "the sink saw fewer records than the topic holds");
  std::printf("ROW\t%s\t%.1f\t-\tMiB peak RSS, 128 MB of records into a sink 10x slower than the "
              "broker (target <= 256), every offset committed\t-\n",
              row, peak_rss_mib());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  if (mode == "consume")
    return consume(runs);
  if (mode == "produce")
    return produce(runs);
  if (mode == "slow-sink")
    return slow_sink();
  std::fprintf(stderr, "usage: kafka_bench consume|produce|slow-sink [RUNS]\n");
  return 2;
}
