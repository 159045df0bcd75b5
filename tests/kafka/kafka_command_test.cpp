// tests/kafka/kafka_command_test.cpp - `shardflow kafka put` and `shardflow kafka run` driven in
// process against librdkafka's mock cluster (it lives inside one process, so the binary cannot
// reach it): lines in, a group consumed into the file flusher, every offset committed on the stop;
// the kafka: flusher choice; bad -X properties and keyless lines are clear errors.
#include "apps/shardflow/kafka_command.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/flusher_choice.hpp"
#include "apps/shardflow/options.hpp"
#include <shardflow/core/error.hpp>

#include "tests/kafka/mock_cluster.hpp"
#include "tests/support/temp_dir.hpp"

using namespace shardflow;
using namespace shardflow::cli;
using shardflow::testing::mock_kafka;
using shardflow::testing::wait_for;
using namespace std::chrono_literals;

namespace {

std::string ndjson(int first, int count) {
  std::string out;
  for (int i = first; i < first + count; ++i)
    out += "{\"user\":" + std::to_string(i) + ",\"n\":\"rec-" + std::to_string(i) + "\"}\n";
  return out;
}

std::size_t lines_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in{f.path()};
    for (std::string line; std::getline(in, line);)
      ++n;
  }
  return n;
}

kafka_run_config run_config(const mock_kafka& mock, const std::string& flusher) {
  kafka_run_config cfg;
  cfg.brokers = mock.bootstraps();
  cfg.topics = "events";
  cfg.group = "g-cli";
  cfg.flusher = flusher;
  cfg.flush_interval = "50ms";
  cfg.checkpoint_interval = "50ms";
  cfg.heartbeat_interval = "50ms";
  cfg.threads = 2;
  cfg.properties = {"session.timeout.ms=4000", "heartbeat.interval.ms=500",
                    "auto.offset.reset=earliest", "log_level=3"};
  return cfg;
}

} // namespace

TEST_CASE("kafka put produces every line keyed by its field") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  kafka_put_config cfg;
  cfg.brokers = mock.bootstraps();
  cfg.topic = "events";
  cfg.key = "user";
  std::istringstream in{ndjson(0, 2000)};
  CHECK(kafka_put_lines(cfg, in, "stdin") == 2000);
  auto hw = mock.high_watermarks("events", 4);
  std::int64_t total = 0;
  for (auto h : hw) {
    CHECK(h > 0); // keyed: spread over the partitions
    total += h;
  }
  CHECK(total == 2000);
}

TEST_CASE("kafka put refuses a line without the key, naming its line") {
  mock_kafka mock;
  mock.create_topic("events", 1);
  kafka_put_config cfg;
  cfg.brokers = mock.bootstraps();
  cfg.topic = "events";
  cfg.key = "user";
  std::istringstream in{"{\"user\":1}\n{\"other\":2}\n"};
  try {
    kafka_put_lines(cfg, in, "in.ndjson");
    FAIL("no error");
  } catch (const error& e) {
    CHECK(e.code() == errc::bad_input);
    CHECK(std::string{e.what()}.find("in.ndjson:2") != std::string::npos);
  }
}

namespace {

// A put to `mock` with its only broker down.
kafka_put_config unreachable_put(mock_kafka& mock, std::string timeout,
                                 std::vector<std::string> properties) {
  mock.create_topic("events", 1);
  rd_kafka_mock_broker_set_down(mock.cluster(), 1);
  kafka_put_config cfg;
  cfg.brokers = mock.bootstraps();
  cfg.topic = "events";
  cfg.connect_timeout = std::move(timeout);
  cfg.properties = std::move(properties);
  return cfg;
}

} // namespace

TEST_CASE("kafka put to a cluster it never reaches fails after --connect-timeout, naming it") {
  mock_kafka mock{1};
  auto cfg = unreachable_put(mock, "1s", {"log_level=3"});
  std::istringstream in{ndjson(0, 3)};
  auto started = std::chrono::steady_clock::now();
  try {
    kafka_put_lines(cfg, in, "stdin");
    FAIL("no records can be delivered");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
    CHECK_THAT(e.what(), Catch::Contains("stdin: 0 of 3 delivered to " + mock.bootstraps()
                                         + " (topic events) within 1 s: "));
  }
  // librdkafka's default message.timeout.ms is 300 s: the bound is --connect-timeout's.
  CHECK(std::chrono::steady_clock::now() - started < 60s);
}

TEST_CASE("kafka put: -X message.timeout.ms is the bound when given") {
  mock_kafka mock{1};
  auto cfg = unreachable_put(mock, "10m", {"log_level=3", "message.timeout.ms=1500"});
  std::istringstream in{ndjson(0, 1)};
  CHECK_THROWS_WITH(kafka_put_lines(cfg, in, "stdin"), Catch::Contains("within 1.5 s"));
}

TEST_CASE("kafka run consumes the group into the file flusher and commits everything on the stop") {
  mock_kafka mock;
  mock.create_topic("events", 4);
  kafka_put_config put;
  put.brokers = mock.bootstraps();
  put.topic = "events";
  put.key = "user";
  std::istringstream in{ndjson(0, 2000)};
  REQUIRE(kafka_put_lines(put, in, "stdin") == 2000);
  auto hw = mock.high_watermarks("events", 4);
  shardflow::testing::temp_dir out;
  auto cfg = run_config(mock, "file:" + (out.path / "out").string());
  cfg.json = (out.path / "summary.json").string();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  auto code = kafka_run(cfg, [&] {
    return lines_in(out.path / "out") >= 2000 || std::chrono::steady_clock::now() > deadline;
  });
  CHECK(code == exit_ok);
  CHECK(lines_in(out.path / "out") >= 2000);
  CHECK(mock.committed("g-cli", "events", 4) == hw);
  auto json = shardflow::testing::slurp(out.path / "summary.json");
  CHECK(json.find("\"events-0\":" + std::to_string(hw[0])) != std::string::npos);
  CHECK(json.find("\"exit_code\":0") != std::string::npos);
}

TEST_CASE("kafka run refuses a bad -X property as a usage error naming it") {
  mock_kafka mock;
  auto cfg = run_config(mock, "null");
  cfg.properties.push_back("no.such.property=1");
  try {
    kafka_run(cfg, [] { return true; });
    FAIL("no error");
  } catch (const CLI::ValidationError& e) {
    CHECK(std::string{e.what()}.find("no.such.property") != std::string::npos);
  }
  cfg.properties.back() = "novalue";
  CHECK_THROWS_AS(kafka_run(cfg, [] { return true; }), CLI::ValidationError);
}

TEST_CASE("the kafka: flusher spec names brokers and a topic") {
  auto ok = parse_flusher("kafka:127.0.0.1:9092,127.0.0.1:9093/out");
  REQUIRE(ok);
  CHECK(ok->name == "kafka");
  CHECK(ok->argument == "127.0.0.1:9092,127.0.0.1:9093/out");
  CHECK(!parse_flusher("kafka:127.0.0.1:9092"));
  CHECK(!parse_flusher("kafka:/out"));
  CHECK(!parse_flusher("kafka:127.0.0.1:9092/"));
  CHECK(parse_flusher("kafka").error().find("kafka:HOST:PORT") != std::string::npos);
}

TEST_CASE("the kafka: flusher choice produces to the topic") {
  mock_kafka mock;
  mock.create_topic("out", 1);
  auto spec = parse_flusher("kafka:" + mock.bootstraps() + "/out");
  REQUIRE(spec);
  flusher_settings s;
  s.kafka_properties = {{"log_level", "3"}};
  auto make = make_flusher_factory(*spec, s);
  auto f = make("s-0");
  stream_record x;
  x.data = "hello";
  REQUIRE(f->add(x, 7) == add_result::added);
  CHECK(f->flush(flush_mode::full) == std::vector<flush_token>{7});
  CHECK(mock.read("out", 1, 1, 10s) == std::vector<std::string>{"hello"});
}

TEST_CASE("kafka run on an unknown topic exits 1 naming it") {
  mock_kafka mock;
  rd_kafka_mock_topic_set_error(mock.cluster(), "missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto cfg = run_config(mock, "null");
  cfg.topics = "missing";
  auto deadline = std::chrono::steady_clock::now() + 30s;
  CHECK(kafka_run(cfg, [&] { return std::chrono::steady_clock::now() > deadline; }) == exit_failed);
  CHECK(std::chrono::steady_clock::now() < deadline); // ended by the error, not by the stop
}

TEST_CASE("kafka run on a cluster it never reaches exits 1 after --connect-timeout") {
  mock_kafka mock{1};
  mock.create_topic("events", 4);
  rd_kafka_mock_broker_set_down(mock.cluster(), 1);
  auto cfg = run_config(mock, "null");
  cfg.connect_timeout = "1s";
  auto deadline = std::chrono::steady_clock::now() + 30s;
  CHECK(kafka_run(cfg, [&] { return std::chrono::steady_clock::now() > deadline; }) == exit_failed);
  CHECK(std::chrono::steady_clock::now() < deadline); // ended by the timeout, not by the stop
}

TEST_CASE("kafka run: a bad --connect-timeout is a usage error") {
  mock_kafka mock;
  auto cfg = run_config(mock, "null");
  cfg.connect_timeout = "soon";
  CHECK_THROWS_AS(kafka_run(cfg, [] { return true; }), CLI::ValidationError);
}
