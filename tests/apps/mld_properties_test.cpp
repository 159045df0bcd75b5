#include "apps/shardflow/mld_properties.hpp"

#include <map>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace shardflow;
using namespace shardflow::cli;

namespace {

// The file as java.util.Properties reads it here: KEY = VALUE lines, # comments.
std::map<std::string, std::string> keys_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    const auto eq = line.find(" = ");
    REQUIRE(eq != std::string::npos);
    const auto key = line.substr(0, eq);
    CHECK(out.count(key) == 0); // each key once: Properties keeps the last, silently
    out[key] = line.substr(eq + 3);
  }
  return out;
}

std::map<std::string, std::string> keys_for(const mld_properties_config& cfg) {
  auto text = mld_properties_text(cfg);
  REQUIRE(text);
  return keys_of(*text);
}

std::string error_for(const mld_properties_config& cfg) {
  auto text = mld_properties_text(cfg);
  REQUIRE_FALSE(text);
  return text.error();
}

} // namespace

SCENARIO("each daemon generation gets its own credentials name and run line",
         "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.stream = "orders";
  cfg.app = "orders-app";
  for (int kcl : {1, 2, 3}) {
    cfg.kcl = kcl;
    auto text = mld_properties_text(cfg);
    REQUIRE(text);
    const auto k = keys_of(*text);
    CHECK(k.at("streamName") == "orders");
    CHECK(k.at("applicationName") == "orders-app");
    CHECK(k.at("regionName") == "us-east-1");
    CHECK(k.at("initialPositionInStream") == "TRIM_HORIZON");
    CHECK(k.at("executableName") == "shardflow mld --flusher file:/var/lib/shardflow/out");
    CHECK(k.at("metricsLevel") == "NONE");
    CHECK(k.count("kinesisEndpoint") == 0);
    if (kcl == 1) {
      CHECK(k.at("AWSCredentialsProvider") == "DefaultAWSCredentialsProviderChain");
      CHECK_THAT(*text, Catch::Contains("com.amazonaws.services.kinesis.multilang.MultiLangDaemon "
                                        "THIS_FILE"));
      CHECK_THAT(*text, !Catch::Contains("software.amazon.kinesis"));
    } else {
      CHECK(k.at("AWSCredentialsProvider") == "DefaultCredentialsProvider");
      CHECK_THAT(*text, Catch::Contains("software.amazon.kinesis.multilang.MultiLangDaemon "
                                        "--properties-file THIS_FILE"));
      CHECK_THAT(*text, Catch::Contains(fmt::format("KCL {}.x jars", kcl)));
      CHECK_THAT(*text, !Catch::Contains("com.amazonaws"));
    }
  }
}

SCENARIO("the settings the peers stage runs KCL 2 and 3 with stay as they were",
         "[apps][mld_properties]") {
  // tests/peers/daemon.py ran the real daemons 3.1.3 and 2.7.2 on these, then its own keys on top.
  for (int kcl : {2, 3}) {
    mld_properties_config cfg;
    cfg.kcl = kcl;
    cfg.executable = "/x/shardflow mld --flusher file:/tmp/out";
    const auto k = keys_for(cfg);
    const std::map<std::string, std::string> want = {
      {"executableName", "/x/shardflow mld --flusher file:/tmp/out"},
      {"streamName", "my-stream"},
      {"applicationName", "my-shardflow-app"},
      {"regionName", "us-east-1"},
      {"AWSCredentialsProvider", "DefaultCredentialsProvider"},
      {"initialPositionInStream", "TRIM_HORIZON"},
      {"maxRecords", "10000"},
      {"idleTimeBetweenReadsInMillis", "1000"},
      {"callProcessRecordsEvenForEmptyRecordList", "true"},
      {"shutdownGraceMillis", "30000"},
      {"maxActiveThreads", "-1"},
      {"processingLanguage", "C++/shardflow"},
      {"metricsLevel", "NONE"},
    };
    CHECK(k == want);
  }
}

SCENARIO("AT_TIMESTAMP is written as the key each generation reads, without the position key",
         "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.initial_position = "AT_TIMESTAMP";
  cfg.initial_position_timestamp = "2026-12-01T00:00:00Z";
  cfg.kcl = 3;
  auto k = keys_for(cfg);
  CHECK(k.at("initialPositionInStreamExtended") == "1796083200");
  CHECK(k.count("initialPositionInStream") == 0); // newInitialPosition(AT_TIMESTAMP) throws
  cfg.kcl = 2;
  CHECK(keys_for(cfg).at("initialPositionInStreamExtended") == "1796083200");
  cfg.kcl = 1;
  cfg.initial_position_timestamp = "1796083200";
  k = keys_for(cfg);
  CHECK(k.at("timestampAtInitialPositionInStream") == "1796083200");
  CHECK(k.count("initialPositionInStream") == 0);
  CHECK(k.count("initialPositionInStreamExtended") == 0);
}

SCENARIO("a timestamp is epoch seconds or a UTC time, nothing else", "[apps][mld_properties]") {
  CHECK(*parse_epoch_seconds("-t", "0") == 0);
  CHECK(*parse_epoch_seconds("-t", "1970-01-02T00:00:01Z") == 86401);
  CHECK(*parse_epoch_seconds("-t", "2024-02-29T12:00:00Z") == 1709208000);
  for (auto bad : {"", "yesterday", "1796083200000000", "2026-12-01", "2026-12-01T00:00:00",
                   "2026-12-01T00:00:00+01:00", "2026-02-31T00:00:00Z", "2026-13-01T00:00:00Z",
                   "-5"}) {
    auto r = parse_epoch_seconds("--initial-position-timestamp", bad);
    CHECK_FALSE(r);
    if (!r)
      CHECK_THAT(r.error(), Catch::StartsWith("--initial-position-timestamp: "));
  }
}

SCENARIO("a stream ARN names the stream and its region (KCL 2 and 3 only)",
         "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.stream_arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders";
  auto k = keys_for(cfg);
  CHECK(k.at("streamArn") == cfg.stream_arn);
  CHECK(k.count("streamName") == 0);
  CHECK(k.at("regionName") == "eu-west-1");
  cfg.region = "us-east-1";
  CHECK_THAT(error_for(cfg),
             Catch::Contains("--region us-east-1: the stream's ARN is in eu-west-1"));
  cfg.region.clear();
  cfg.kcl = 1;
  CHECK_THAT(error_for(cfg), Catch::Contains("KCL 1.x has no streamArn"));
  cfg.kcl = 3;
  for (auto bad : {"orders", "arn:aws:kinesis:eu-west-1:123456789012:stream/",
                   "arn:aws:sqs:eu-west-1:123456789012:stream/orders",
                   "arn:aws:kinesis:eu-west-1:acct:stream/orders"}) {
    cfg.stream_arn = bad;
    CHECK_THAT(error_for(cfg), Catch::Contains("is not a Kinesis stream's ARN"));
  }
}

SCENARIO("emulator endpoints are written when given, with the generation's CBOR switch",
         "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.kinesis_endpoint = "http://127.0.0.1:4568";
  cfg.dynamodb_endpoint = "http://127.0.0.1:4569";
  for (int kcl : {1, 3}) {
    cfg.kcl = kcl;
    auto text = mld_properties_text(cfg);
    REQUIRE(text);
    const auto k = keys_of(*text);
    CHECK(k.at("kinesisEndpoint") == "http://127.0.0.1:4568");
    CHECK(k.at("dynamoDBEndpoint") == "http://127.0.0.1:4569");
    CHECK_THAT(*text, Catch::Contains(kcl == 1 ? "-Dcom.amazonaws.sdk.disableCbor=true"
                                               : "-Daws.cborEnabled=false"));
  }
}

SCENARIO("server mode names the connector and how to start the server with its flusher",
         "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.mode = "server";
  cfg.listen = "127.0.0.1:7401";
  cfg.flusher = "postgres:postgresql://db/app";
  auto text = mld_properties_text(cfg);
  REQUIRE(text);
  CHECK(keys_of(*text).at("executableName") == "shardflow mld-connect 127.0.0.1:7401");
  CHECK_THAT(*text, Catch::Contains("shardflow mld-server --listen 127.0.0.1:7401 --flusher "
                                    "postgres:postgresql://db/app"));
}

SCENARIO("bad combinations fail naming the option", "[apps][mld_properties]") {
  mld_properties_config cfg;
  cfg.kcl = 4;
  CHECK_THAT(error_for(cfg), Catch::StartsWith("--kcl: 4"));
  cfg.kcl = 0;
  CHECK_THAT(error_for(cfg), Catch::StartsWith("--kcl: 0"));
  cfg = {};
  cfg.initial_position = "AT_TIMESTAMP";
  CHECK_THAT(error_for(cfg), Catch::Contains("AT_TIMESTAMP needs --initial-position-timestamp"));
  cfg.initial_position_timestamp = "soon";
  CHECK_THAT(error_for(cfg), Catch::StartsWith("--initial-position-timestamp: \"soon\""));
  cfg = {};
  cfg.initial_position_timestamp = "1796083200";
  CHECK_THAT(error_for(cfg), Catch::Contains("needs --initial-position AT_TIMESTAMP"));
  cfg = {};
  cfg.executable = "shardflow mld --batch-size 10";
  CHECK_THAT(error_for(cfg), Catch::Contains("`shardflow mld` needs --flusher"));
  cfg.executable = "/usr/bin/shardflow mld";
  CHECK_THAT(error_for(cfg), Catch::Contains("`shardflow mld` needs --flusher"));
  cfg.executable = "/usr/bin/shardflow mld --flusher=file:/out";
  CHECK(mld_properties_text(cfg));
  cfg = {};
  cfg.flusher = "stdout";
  CHECK_THAT(error_for(cfg), Catch::StartsWith("--flusher stdout"));
  cfg.flusher = "bogus:x";
  CHECK_THAT(error_for(cfg), Catch::StartsWith("--flusher: unknown flusher"));
  cfg.flusher = "postgres:host=db dbname=app";
  CHECK_THAT(error_for(cfg), Catch::Contains("splits executableName on spaces"));
  cfg.mode = "server"; // the flusher is the server's, in a comment
  CHECK(mld_properties_text(cfg));
}
