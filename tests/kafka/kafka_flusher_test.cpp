// tests/kafka/kafka_flusher_test.cpp - the Kafka flusher against librdkafka's mock cluster: the
// contract, tokens only from delivery reports (asynchronous), every record in the output topic, a
// failed delivery fails the flusher.
#include <shardflow/kafka/kafka_flusher.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/conformance.hpp>

#include "tests/kafka/mock_cluster.hpp"

using namespace shardflow;
using shardflow::testing::mock_kafka;
using shardflow::testing::wait_for;
using namespace std::chrono_literals;

namespace {

kafka_flusher_config output(const mock_kafka& mock) {
  kafka_flusher_config cfg;
  cfg.brokers = mock.bootstraps();
  cfg.topic = "out";
  cfg.properties = {{"linger.ms", "5"}, {"log_level", "3"}};
  return cfg;
}

stream_record record(int i) {
  stream_record x;
  x.partition_key = "k" + std::to_string(i);
  x.data = "rec-" + std::to_string(i);
  x.sequence.base = sequence_base{static_cast<std::uint64_t>(i)};
  return x;
}

} // namespace

TEST_CASE("the kafka flusher keeps the flusher contract") {
  mock_kafka mock;
  mock.create_topic("out", 2);
  REQUIRE_NOTHROW(require_flusher_contract(kafka_flusher_factory(output(mock))));
}

TEST_CASE("the kafka flusher returns tokens from delivery reports and the topic holds every "
          "record") {
  mock_kafka mock;
  mock.create_topic("out", 4);
  kafka_flusher f{"s-0", output(mock)};
  std::vector<stream_record> records;
  for (int i = 0; i < 1000; ++i)
    records.push_back(record(i));
  for (int i = 0; i < 1000; ++i)
    REQUIRE(f.add(records[i], static_cast<flush_token>(i)) == add_result::added);
  std::set<flush_token> back;
  auto take = [&](std::vector<flush_token> xs) {
    for (auto t : xs)
      REQUIRE(back.insert(t).second); // each token once
  };
  take(f.flush(flush_mode::partial)); // does not wait: some or none
  REQUIRE(wait_for(
    [&] {
      take(f.heartbeat());
      return back.size() == 1000;
    },
    20s));
  CHECK(f.outstanding() == 0);
  CHECK(f.flush(flush_mode::full).empty());
  auto got = mock.read("out", 4, 1000, 20s);
  std::set<std::string> values(got.begin(), got.end());
  CHECK(got.size() == 1000);
  for (int i = 0; i < 1000; ++i)
    CHECK(values.count("rec-" + std::to_string(i)) == 1);
}

TEST_CASE("the kafka flusher learns its topic's partitions when it is made, so its first "
          "delivery report does not wait for librdkafka's topic scan") {
  mock_kafka mock;
  mock.create_topic("out", 4);
  kafka_flusher f{"s-0", output(mock)};
  CHECK(f.partitions() == 4);
  // The producer's connection is up by now: a topic librdkafka 2.0.2 first hears of only at the
  // first record would wait for its once-a-second scan.
  auto x = record(1);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(f.add(x, 1) == add_result::added);
  std::vector<flush_token> back;
  REQUIRE(wait_for(
    [&] {
      back = f.heartbeat();
      return !back.empty();
    },
    20s));
  CHECK(back == std::vector<flush_token>{1});
  CHECK(std::chrono::steady_clock::now() - t0 < 800ms);

  auto quiet = output(mock);
  quiet.metadata_timeout = 0ms;
  kafka_flusher g{"s-1", quiet};
  CHECK(g.partitions() == 0); // not asked
}

TEST_CASE("flush(full) waits for every delivery report") {
  mock_kafka mock;
  mock.create_topic("out", 2);
  kafka_flusher f{"s-0", output(mock)};
  std::vector<stream_record> records;
  for (int i = 0; i < 100; ++i)
    records.push_back(record(i));
  for (int i = 0; i < 100; ++i)
    REQUIRE(f.add(records[i], static_cast<flush_token>(i)) == add_result::added);
  auto tokens = f.flush(flush_mode::full);
  CHECK(tokens.size() == 100);
  CHECK(f.outstanding() == 0);
}

TEST_CASE("a failed delivery fails the kafka flusher with io_failed") {
  mock_kafka mock;
  mock.create_topic("out", 1);
  auto cfg = output(mock);
  cfg.properties["message.timeout.ms"] = "500";
  cfg.properties["log_level"] = "0"; // the brokers are down on purpose
  kafka_flusher f{"s-0", cfg};
  for (int b = 1; b <= 3; ++b)
    rd_kafka_mock_broker_set_down(mock.cluster(), b);
  auto x = record(1);
  REQUIRE(f.add(x, 1) == add_result::added);
  std::string what;
  REQUIRE(wait_for(
    [&] {
      try {
        auto tokens = f.heartbeat();
        REQUIRE(tokens.empty());
      } catch (const error& e) {
        CHECK(e.code() == errc::io_failed);
        what = e.what();
        return true;
      }
      return false;
    },
    20s));
  CHECK(what.find("delivery to out failed") != std::string::npos);
}
