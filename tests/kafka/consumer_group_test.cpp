// tests/kafka/consumer_group_test.cpp - partitions as shards under a consumer group, against
// librdkafka's mock cluster in this process (the fast tier of issue 14). Rebalances on the mock
// refuse commits, so across a rebalance these tests assert "nothing lost", never "no duplicates".
#include <shardflow/kafka/consumer_group.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <catch2/catch.hpp>

#include <shardflow/actors/messages.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/kafka/kafka_flusher.hpp>

#include "tests/kafka/mock_cluster.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/threaded_system.hpp"

using namespace shardflow;
using shardflow::testing::group_properties;
using shardflow::testing::mock_kafka;
using shardflow::testing::wait_for;
using namespace std::chrono_literals;

namespace {

/// What every shard's flusher saw: offsets per shard, in order; the data of each record.
struct seen {
  std::mutex mtx;
  std::map<shard_id, std::vector<std::int64_t>> offsets;
  std::multiset<std::string> data;
  /// The attributes of each record, by its data (none: an empty list; an empty list that is not
  /// null reads {"empty", "list"}).
  std::map<std::string, record_attributes> attributes;
  /// Shard and offset at which a flusher throws once (to crash its shard).
  std::string crash_shard;
  std::int64_t crash_at = -1;
  bool crashed = false;
};

class seen_flusher final : public flusher {
public:
  seen_flusher(shard_id id, std::shared_ptr<seen> out) : id_(std::move(id)), out_(std::move(out)) {
  }

  add_result add(const stream_record& x, flush_token token) override {
    std::lock_guard<std::mutex> guard{out_->mtx};
    auto o = static_cast<std::int64_t>(*x.sequence.base.to_uint64());
    if (!out_->crashed && id_ == out_->crash_shard && o == out_->crash_at) {
      out_->crashed = true;
      throw std::runtime_error("test crash");
    }
    out_->offsets[id_].push_back(o);
    out_->data.insert(x.data);
    auto& attrs = out_->attributes[x.data];
    attrs = x.attributes ? *x.attributes : record_attributes{};
    if (x.attributes && x.attributes->empty()) // none is null, never an empty list
      attrs.emplace_back("empty", "list");
    pending_.push_back(token);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode) override {
    return std::exchange(pending_, {});
  }

  std::vector<flush_token> heartbeat() override {
    return std::exchange(pending_, {});
  }

private:
  shard_id id_;
  std::shared_ptr<seen> out_;
  std::vector<flush_token> pending_;
};

using testing::threaded_system;

std::unique_ptr<runtime> make_runtime(caf::actor_system& sys) {
  runtime_config rc;
  if (std::getenv("SHARDFLOW_TEST_LOG") == nullptr)
    rc.log = [](log_level, std::string_view) {};
  auto rt = runtime::start(sys, rc);
  REQUIRE(rt);
  return std::move(*rt);
}

shard_group_config shard_template(flusher_factory make) {
  shard_group_config g;
  g.shard.make_flusher = std::move(make);
  g.shard.batch.flush_interval = 50ms;
  g.shard.batch.checkpoint_interval = 50ms;
  g.shard.heartbeat_interval = 50ms;
  g.feeder.poll_interval = 10ms;
  if (std::getenv("SHARDFLOW_TEST_LOG") == nullptr)
    g.report = [](const std::string&) {};
  return g;
}

/// A sink slower than Kafka: holds up to `capacity` records while the gate is closed, and a full
/// flush (what the processor does when the batch is full) blocks its detached shard until the gate
/// opens (30 s at most).
class gated_flusher final : public flusher {
public:
  explicit gated_flusher(std::shared_ptr<std::atomic<bool>> open, std::size_t capacity = 100)
    : open_(std::move(open)), capacity_(capacity) {
  }

  add_result add(const stream_record&, flush_token token) override {
    if (pending_.size() >= capacity_ && !open_->load())
      return add_result::full;
    pending_.push_back(token);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    if (mode == flush_mode::full)
      wait_for([this] { return open_->load(); }, 30s);
    if (mode == flush_mode::full || open_->load())
      return std::exchange(pending_, {});
    return {};
  }

  std::vector<flush_token> heartbeat() override {
    return flush(flush_mode::partial);
  }

private:
  std::shared_ptr<std::atomic<bool>> open_;
  std::size_t capacity_;
  std::vector<flush_token> pending_;
};

flusher_factory seen_factory(std::shared_ptr<seen> out) {
  return [out](const shard_id& id) { return std::make_unique<seen_flusher>(id, out); };
}

kafka_source_config source(const mock_kafka& mock, const std::string& group) {
  kafka_source_config k;
  k.brokers = mock.bootstraps();
  k.topics = {"events"};
  k.group = group;
  k.properties = group_properties();
  if (std::getenv("SHARDFLOW_TEST_LOG") == nullptr)
    k.log = [](log_level, std::string_view) {};
  return k;
}

/// Waits until the store committed the high watermark of every partition.
bool all_committed(const kafka_consumer_group& g, const std::vector<std::int64_t>& hw,
                   std::chrono::milliseconds limit) {
  return wait_for(
    [&] {
      for (std::size_t p = 0; p < hw.size(); ++p) {
        auto c = g.store()->committed(kafka_shard_id("events", static_cast<std::int32_t>(p)));
        if (!c || *c != hw[p])
          return false;
      }
      return true;
    },
    limit);
}

/// Returns the data of every record line in the files under `dir`.
std::multiset<std::string> data_in(const std::filesystem::path& dir) {
  std::multiset<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in{f.path()};
    std::string line;
    while (std::getline(in, line)) {
      auto at = line.find("\"d\":\"");
      REQUIRE(at != std::string::npos);
      auto end = line.find('"', at + 5);
      out.insert(line.substr(at + 5, end - at - 5));
    }
  }
  return out;
}

void require_every_record(const std::multiset<std::string>& got, int count) {
  for (int i = 0; i < count; ++i)
    if (got.count("rec-" + std::to_string(i)) == 0)
      FAIL("record rec-" << i << " is missing");
}

} // namespace

TEST_CASE("a group member consumes 4 partitions into the file flusher and commits the watermarks") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.produce("events", 0, 4000);
  auto hw = mock.high_watermarks("events", 4);
  shardflow::testing::temp_dir out;
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  file_flusher_config fc;
  fc.dir = out.path;
  auto tpl
    = shard_template([fc](const shard_id& id) { return std::make_unique<file_flusher>(id, fc); });
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-file"), tpl);
  REQUIRE(all_committed(*g, hw, 30s));
  g->stop();
  CHECK(g->failure().empty());
  CHECK(mock.committed("g-file", "events", 4) == hw);
  CHECK(all_committed(*g, hw, 0s)); // the store still says what it committed after stop()
  auto got = data_in(out.path);
  require_every_record(got, 4000);
  rt->shutdown();
}

TEST_CASE("a restarted member resumes every partition exactly at the committed offsets") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.produce("events", 0, 2000);
  auto hw1 = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  {
    auto first = std::make_shared<seen>();
    auto g = kafka_consumer_group::start(*rt, source(mock, "g-restart"),
                                         shard_template(seen_factory(first)));
    REQUIRE(all_committed(*g, hw1, 30s));
    g->stop();
  }
  REQUIRE(mock.committed("g-restart", "events", 4) == hw1);
  mock.produce("events", 2000, 2000);
  auto hw2 = mock.high_watermarks("events", 4);
  auto second = std::make_shared<seen>();
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-restart"),
                                       shard_template(seen_factory(second)));
  auto ok = all_committed(*g, hw2, 30s);
  for (int p = 0; p < 4; ++p) {
    auto id = kafka_shard_id("events", p);
    std::lock_guard<std::mutex> guard{second->mtx};
    UNSCOPED_INFO(id << ": committed " << g->store()->committed(id).value_or(-1) << ", high "
                     << hw2[p] << ", records seen " << second->offsets[id].size());
  }
  REQUIRE(ok);
  g->stop();
  std::lock_guard<std::mutex> guard{second->mtx};
  for (int p = 0; p < 4; ++p) {
    const auto& offs = second->offsets[kafka_shard_id("events", p)];
    INFO("partition " << p);
    REQUIRE(!offs.empty());
    CHECK(offs.front() == hw1[p]); // no record before the commit came again
    CHECK(offs.back() == hw2[p] - 1);
    CHECK(offs.size() == static_cast<std::size_t>(hw2[p] - hw1[p]));
  }
  rt->shutdown();
}

TEST_CASE("a flusher crash replays its partition from the checkpoint, nothing lost") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.produce("events", 0, 4000);
  auto hw = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  out->crash_shard = kafka_shard_id("events", 1);
  out->crash_at = hw[1] / 2;
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-crash"),
                                       shard_template(seen_factory(out)));
  REQUIRE(all_committed(*g, hw, 30s));
  g->stop();
  CHECK(mock.committed("g-crash", "events", 4) == hw);
  std::lock_guard<std::mutex> guard{out->mtx};
  CHECK(out->crashed);
  require_every_record(out->data, 4000);
  // The crashed partition: every offset, in order within each incarnation, none skipped.
  std::set<std::int64_t> offs(out->offsets[out->crash_shard].begin(),
                              out->offsets[out->crash_shard].end());
  CHECK(offs.size() == static_cast<std::size_t>(hw[1]));
  rt->shutdown();
}

TEST_CASE("two members split the partitions and a leaving one hands its partitions over") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.produce("events", 0, 4000);
  threaded_system ts;
  auto rt_a = make_runtime(ts.sys);
  auto rt_b = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto a = kafka_consumer_group::start(*rt_a, source(mock, "g-two"),
                                       shard_template(seen_factory(out)));
  REQUIRE(wait_for([&] { return a->assigned().size() == 4; }, 30s));
  auto b = kafka_consumer_group::start(*rt_b, source(mock, "g-two"),
                                       shard_template(seen_factory(out)));
  REQUIRE(wait_for(
    [&] {
      auto x = a->assigned();
      auto y = b->assigned();
      std::set<shard_id> all(x.begin(), x.end());
      all.insert(y.begin(), y.end());
      return !x.empty() && !y.empty() && x.size() + y.size() == 4 && all.size() == 4;
    },
    40s));
  CHECK(b->assignments() >= 1);
  mock.produce("events", 4000, 4000);
  a->stop(); // leaves the group: b gets every partition
  CHECK(a->failure().empty());
  REQUIRE(wait_for([&] { return b->assigned().size() == 4; }, 40s));
  auto hw = mock.high_watermarks("events", 4);
  REQUIRE(all_committed(*b, hw, 30s));
  b->stop();
  CHECK(b->failure().empty());
  CHECK(mock.committed("g-two", "events", 4) == hw);
  std::lock_guard<std::mutex> guard{out->mtx};
  require_every_record(out->data, 8000); // duplicates allowed: the mock refuses commits meanwhile
  rt_a->shutdown();
  rt_b->shutdown();
}

TEST_CASE("a partition whose shard holds its credit is paused, and resumed once it drains") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.produce("events", 0, 8000);
  auto hw = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto open = std::make_shared<std::atomic<bool>>(false);
  auto tpl
    = shard_template([open](const shard_id&) { return std::make_unique<gated_flusher>(open); });
  tpl.shard.credit = 100;
  tpl.shard.detached = true;
  tpl.feeder.max_batch = 50;
  auto k = source(mock, "g-pause");
  k.pause_above = 300;
  k.resume_below = 50;
  // librdkafka fetches until 1,000 are queued: past pause_above whatever batches the producer made
  // (with the default, a quarter of the credit, a queue could stop at its first batch below 300).
  k.prefetch_messages = 1000;
  auto g = kafka_consumer_group::start(*rt, k, tpl);
  // Every partition is paused, though not all at once: librdkafka 2.0.2 empties a paused queue, so
  // the next check resumes it and the next fetch pauses it again (all four at one moment: a flake).
  std::set<shard_id> seen;
  REQUIRE(wait_for(
    [&] {
      for (auto& id : g->paused())
        seen.insert(id);
      return seen.size() == 4;
    },
    30s));
  open->store(true);
  REQUIRE(all_committed(*g, hw, 30s));
  CHECK(wait_for([&] { return g->paused().empty(); }, 10s));
  g->stop();
  CHECK(mock.committed("g-pause", "events", 4) == hw);
  rt->shutdown();
}

TEST_CASE("a group consumed into the kafka flusher: the output topic holds every record") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  mock.create_topic("copy", 2);
  mock.produce("events", 0, 4000);
  auto hw = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  kafka_flusher_config out;
  out.brokers = mock.bootstraps();
  out.topic = "copy";
  out.properties = {{"log_level", "3"}};
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-copy"),
                                       shard_template(kafka_flusher_factory(out)));
  REQUIRE(all_committed(*g, hw, 30s));
  g->stop();
  CHECK(g->failure().empty());
  auto got = mock.read("copy", 2, 4000, 30s);
  std::multiset<std::string> values(got.begin(), got.end());
  require_every_record(values, 4000);
  rt->shutdown();
}

TEST_CASE("records fetched after a partition ran dry wake its feeder: no wait for a poll") {
  mock_kafka mock;
  mock.create_topic("events", 2);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto tpl = shard_template(seen_factory(out));
  tpl.feeder.poll_interval = std::chrono::hours{1}; // the wake-up, or nothing
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-wake"), tpl);
  REQUIRE(wait_for([&] { return g->assigned().size() == 2; }, 30s));
  // One record into each partition, read: each feeder has then read its queue empty (it reads
  // until it finds nothing). Then the rest, which only a wake-up brings.
  mock.produce("events", 0, 1, "rec-", 0);
  mock.produce("events", 1, 1, "rec-", 1);
  REQUIRE(wait_for(
    [&] {
      for (int p = 0; p < 2; ++p) {
        auto m = rt->meters(kafka_shard_id("events", p));
        if (!m || m->records_received.load() != 1)
          return false;
      }
      return true;
    },
    30s));
  mock.produce("events", 2, 200);
  auto hw = mock.high_watermarks("events", 2);
  CHECK(all_committed(*g, hw, 30s));
  g->stop();
  std::lock_guard<std::mutex> guard{out->mtx};
  require_every_record(out->data, 202);
  rt->shutdown();
}

TEST_CASE("an unknown topic ends consuming with a clear message and commits nothing") {
  mock_kafka mock;
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto k = source(mock, "g-missing");
  k.topics = {"missing"};
  rd_kafka_mock_topic_set_error(mock.cluster(), "missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto g = kafka_consumer_group::start(*rt, k, shard_template(seen_factory(out)));
  REQUIRE(wait_for([&] { return g->finished(); }, 30s));
  INFO(g->failure());
  CHECK(g->failure().find("missing") != std::string::npos);
  CHECK(g->store()->commits() == 0);
  g->stop();
  rt->shutdown();
}

TEST_CASE("a failed kafka delivery restarts the shard, which replays from the checkpoint") {
  mock_kafka mock;
  mock_kafka sink{1}; // the output cluster, taken down for a while
  mock.create_topic("events", 4);
  sink.create_topic("copy", 1);
  mock.produce("events", 0, 2000);
  auto hw = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  kafka_flusher_config out;
  out.brokers = sink.bootstraps();
  out.topic = "copy";
  out.properties = {{"log_level", "0"}, {"message.timeout.ms", "2000"}};
  rd_kafka_mock_broker_set_down(sink.cluster(), 1);
  auto tpl = shard_template(kafka_flusher_factory(out));
  tpl.backoff = backoff_spec{}; // restart at once
  tpl.intensity = 1000;
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-fail"), tpl);
  REQUIRE(wait_for(
    [&] {
      for (const auto& id : rt->shards())
        if (auto m = rt->meters(id); m && m->restarts.load() > 0)
          return true;
      return false;
    },
    30s));
  for (int p = 0; p < 4; ++p) // nothing undelivered was committed
    CHECK(g->store()->committed(kafka_shard_id("events", p)).value_or(0) == 0);
  rd_kafka_mock_broker_set_up(sink.cluster(), 1);
  REQUIRE(all_committed(*g, hw, 60s));
  g->stop();
  auto got = sink.read("copy", 1, 2000, 30s);
  std::multiset<std::string> values(got.begin(), got.end());
  require_every_record(values, 2000);
  rt->shutdown();
}

namespace {

/// A log sink that keeps every line, for waits on what the group said.
struct kept_log {
  std::mutex mtx;
  std::vector<std::string> lines;

  bool has(const std::string& text) {
    std::lock_guard<std::mutex> guard{mtx};
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& x) { return x.find(text) != std::string::npos; });
  }
};

log_sink keep_into(const std::shared_ptr<kept_log>& out) {
  return [out](log_level, std::string_view line) {
    std::lock_guard<std::mutex> guard{out->mtx};
    out->lines.emplace_back(line);
  };
}

} // namespace

TEST_CASE("a cluster out of reach for less than the connect timeout is ridden out") {
  mock_kafka mock{1};
  mock.create_topic("events", 4);
  mock.produce("events", 0, 1000);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto said = std::make_shared<kept_log>();
  auto k = source(mock, "g-down");
  k.connect_timeout = 30s;
  k.probe_interval = 200ms;
  k.log = keep_into(said);
  auto g = kafka_consumer_group::start(*rt, k, shard_template(seen_factory(out)));
  REQUIRE(all_committed(*g, mock.high_watermarks("events", 4), 60s));
  rd_kafka_mock_broker_set_down(mock.cluster(), 1);
  REQUIRE(wait_for([&] { return said->has("All broker connections are down"); }, 30s));
  rd_kafka_mock_broker_set_up(mock.cluster(), 1);
  REQUIRE(wait_for([&] { return said->has("answers again"); }, 30s));
  mock.produce("events", 1000, 1000);
  REQUIRE(all_committed(*g, mock.high_watermarks("events", 4), 60s));
  CHECK(g->failure().empty());
  CHECK_FALSE(g->finished());
  g->stop();
  std::lock_guard<std::mutex> guard{out->mtx};
  require_every_record(out->data, 2000);
  rt->shutdown();
}

TEST_CASE("a cluster out of reach for longer than the connect timeout ends consuming naming it") {
  mock_kafka mock{1};
  mock.create_topic("events", 4);
  mock.produce("events", 0, 1000);
  auto hw = mock.high_watermarks("events", 4);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto k = source(mock, "g-gone");
  k.connect_timeout = 2s;
  k.probe_interval = 200ms;
  auto g = kafka_consumer_group::start(*rt, k, shard_template(seen_factory(out)));
  REQUIRE(all_committed(*g, hw, 60s));
  rd_kafka_mock_broker_set_down(mock.cluster(), 1);
  // Bounded by the connect timeout plus a commit timeout per shard at most (the stopping shards'
  // last checkpoints are refused at once); it took 34-38 s when commits waited for a coordinator
  // and the stopping shards retried them.
  REQUIRE(wait_for([&] { return g->finished(); }, 25s));
  INFO(g->failure());
  CHECK(g->failure().find("every broker down") != std::string::npos);
  CHECK(g->failure().find("connect timeout (2.0 s)") != std::string::npos);
  g->stop();
  rt->shutdown();
}

namespace {

// Consumes 400 records into flushers that make nothing durable, cuts the cluster off with `cut`,
// then lets the flushers make everything durable: checkpoints to commit to a cluster that does not
// answer. The group must fail on its connect timeout and stop within bounds (a commit waits at
// most commit_timeout, and once the cluster is given up the stopping shards' last checkpoints are
// refused as stale instead of retried); returns its failure.
std::string fail_with_checkpoints_waiting(const std::string& group,
                                          const std::function<void(mock_kafka&)>& cut) {
  mock_kafka mock{1};
  mock.create_topic("events", 4);
  mock.produce("events", 0, 400);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto open = std::make_shared<std::atomic<bool>>(false);
  auto k = source(mock, group);
  k.connect_timeout = 2s;
  k.commit_timeout = 2s;
  k.probe_interval = 200ms;
  auto g = kafka_consumer_group::start(
    *rt, k,
    shard_template([open](const shard_id&) { return std::make_unique<gated_flusher>(open, 1000); }));
  REQUIRE(wait_for(
    [&] {
      std::uint64_t n = 0;
      for (const auto& id : rt->shards())
        if (auto m = rt->meters(id))
          n += m->records_received.load();
      return n == 400;
    },
    60s)); // consumed, nothing durable
  cut(mock);
  *open = true; // durable now: checkpoints to commit, to a cluster that does not answer
  // Bounded by the connect timeout plus a commit timeout per shard at most; it took 34-38 s when
  // commits waited for a coordinator and the stopping shards retried them.
  REQUIRE(wait_for([&] { return g->finished(); }, 25s));
  auto failure = g->failure();
  // Torn down on a thread of its own, with a deadline (leaked when it hangs: the test fails). A
  // commit sent just before the broker went down made librdkafka's close() wait for ever (its
  // issue #3740; this test hung in CI once); the consumer's destroy is bounded by the session
  // timeout (45 s by default).
  auto done = std::make_shared<std::promise<void>>();
  auto stopped = done->get_future();
  std::thread{[done, member = g.release()] {
    delete member;
    done->set_value();
  }}.detach();
  REQUIRE(stopped.wait_for(60s) == std::future_status::ready);
  rt->shutdown();
  return failure;
}

} // namespace

TEST_CASE("a cluster gone while checkpoints wait to be committed: the group fails and stops") {
  auto failure = fail_with_checkpoints_waiting(
    "g-uncommitted", [](mock_kafka& mock) { rd_kafka_mock_broker_set_down(mock.cluster(), 1); });
  INFO(failure);
  CHECK(failure.find("every broker down") != std::string::npos);
}

// A network that drops packets closes no connection, so librdkafka does not say that its brokers
// are down (for a minute at least: socket.timeout.ms): the commit that goes unanswered starts the
// connect timeout instead. (The test's 4 s session also lets librdkafka declare the assignment
// lost at about the same time: either comes first, and the group must fail and stop either way.)
TEST_CASE("a cluster gone silent while checkpoints wait to be committed: the group fails and "
          "stops") {
  auto failure = fail_with_checkpoints_waiting("g-silent", [](mock_kafka& mock) {
    rd_kafka_mock_broker_set_rtt(mock.cluster(), 1, 600'000); // answers in 10 minutes
  });
  INFO(failure);
  CHECK(failure.find("answered neither a commit nor a metadata request") != std::string::npos);
  CHECK(failure.find("no answer within 2000 ms") != std::string::npos);
}

namespace {

// The headers record i gets: none for every tenth, else h=v<i>, an empty one, and a repeated key.
record_attributes headers_for(int i) {
  if (i % 10 == 0)
    return {};
  return {{"h", "v" + std::to_string(i)}, {"empty", ""}, {"twice", "1"}, {"twice", "2"}};
}

// Produces `count` records with headers_for(i), record i into partition i % partitions (each
// partition gets records, so that each has a commit to wait for).
void produce_with_headers(const mock_kafka& mock, const std::string& topic, int partitions,
                          int count) {
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  std::string why;
  conf->set("bootstrap.servers", mock.bootstraps(), why);
  conf->set("log_level", "3", why);
  std::unique_ptr<RdKafka::Producer> p{RdKafka::Producer::create(conf.get(), why)};
  REQUIRE(p);
  for (int i = 0; i < count; ++i) {
    auto value = "rec-" + std::to_string(i);
    RdKafka::Headers* headers = nullptr;
    if (auto hs = headers_for(i); !hs.empty()) {
      headers = RdKafka::Headers::create();
      for (const auto& [k, v] : hs)
        headers->add(k, v.data(), v.size());
    }
    REQUIRE(p->produce(topic, i % partitions, RdKafka::Producer::RK_MSG_COPY,
                       value.data(), value.size(), nullptr, 0, 0, headers, nullptr)
            == RdKafka::ERR_NO_ERROR);
  }
  REQUIRE(p->flush(30'000) == RdKafka::ERR_NO_ERROR);
}

// The headers of every record of `topic` (value -> headers), read from the beginning.
std::map<std::string, record_attributes> read_headers(mock_kafka& mock, const std::string& topic,
                                                      int partitions, std::size_t count) {
  std::map<std::string, record_attributes> out;
  mock.read_each(topic, partitions, count, 30s, [&](RdKafka::Message& m) {
    auto& hs = out[std::string{static_cast<const char*>(m.payload()), m.len()}];
    if (auto* h = m.headers())
      for (const auto& x : h->get_all())
        hs.emplace_back(x.key(), x.value() != nullptr
                                   ? std::string{x.value_string(), x.value_size()}
                                   : std::string{});
  });
  return out;
}

} // namespace

TEST_CASE("record headers are the records' attributes, and the kafka flusher produces them back") {
  mock_kafka mock;
  mock.create_topic("events", 2);
  mock.create_topic("copy", 2);
  produce_with_headers(mock, "events", 2, 200);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  kafka_flusher_config out;
  out.brokers = mock.bootstraps();
  out.topic = "copy";
  out.properties = {{"log_level", "3"}};
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-headers"),
                                       shard_template(kafka_flusher_factory(out)));
  REQUIRE(all_committed(*g, mock.high_watermarks("events", 2), 60s));
  g->stop();
  auto got = read_headers(mock, "copy", 2, 200);
  REQUIRE(got.size() == 200);
  for (int i = 0; i < 200; ++i) {
    INFO("record " << i);
    CHECK(got["rec-" + std::to_string(i)] == headers_for(i));
  }
  rt->shutdown();
}

TEST_CASE("a kafka partition's records carry their headers as attributes, in order") {
  mock_kafka mock;
  mock.create_topic("events", 1);
  produce_with_headers(mock, "events", 1, 20);
  threaded_system ts;
  auto rt = make_runtime(ts.sys);
  auto out = std::make_shared<seen>();
  auto g = kafka_consumer_group::start(*rt, source(mock, "g-attrs"),
                                       shard_template(seen_factory(out)));
  REQUIRE(all_committed(*g, mock.high_watermarks("events", 1), 60s));
  g->stop();
  std::lock_guard<std::mutex> guard{out->mtx};
  REQUIRE(out->attributes.size() == 20);
  for (int i = 0; i < 20; ++i) {
    INFO("record " << i);
    CHECK(out->attributes["rec-" + std::to_string(i)] == headers_for(i));
  }
  rt->shutdown();
}

TEST_CASE("the member's librdkafka prefetch is sized from the shard's credit unless the user's "
          "properties set it") {
  kafka_source_config k;
  auto p = kafka_prefetch_properties(k, 10'000);
  CHECK(p.at("queued.min.messages") == "2500"); // a quarter of the credit, not 100,000
  CHECK(p.at("max.partition.fetch.bytes") == std::to_string(256 << 10));
  CHECK(p.at("fetch.max.bytes") == std::to_string(1 << 20));
  CHECK(kafka_prefetch_properties(k, 2).at("queued.min.messages") == "1");
  k.prefetch_messages = 7;
  CHECK(kafka_prefetch_properties(k, 10'000).at("queued.min.messages") == "7");
  k.properties = {{"queued.min.messages", "1000000"},
                  {"fetch.message.max.bytes", "2097152"},
                  {"message.max.bytes", "4000000"}};
  p = kafka_prefetch_properties(k, 10'000);
  CHECK(p.count("queued.min.messages") == 0);       // the user's
  CHECK(p.count("max.partition.fetch.bytes") == 0); // set through its alias
  CHECK(p.at("fetch.max.bytes") == "4000000");      // librdkafka wants >= message.max.bytes
  // And librdkafka takes them.
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  for (const auto& [key, value] : kafka_prefetch_properties(kafka_source_config{}, 10'000))
    REQUIRE_NOTHROW(set_kafka_property(*conf, key, value, "consumer"));
}
