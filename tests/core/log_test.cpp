// Tests of core/log.hpp: the line format, the levels, and the default sink on stderr.
#include <shardflow/core/log.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/captured_stderr.hpp"

using namespace shardflow;

SCENARIO("the default sink writes one stderr line per call with a UTC timestamp and the level",
         "[core][log]") {
  using namespace std::chrono;
  const auto at = system_clock::time_point{seconds{1'796'162'043} + milliseconds{120}};
  CHECK(log_line(at, log_level::warning, "shardflow mld", "shardId-1: hello")
        == "2026-12-01T21:54:03.120Z warning shardflow mld: shardId-1: hello");
  CHECK(std::string{to_string(log_level::debug)} == "debug");
  CHECK(std::string{to_string(log_level::info)} == "info");
  CHECK(std::string{to_string(log_level::error)} == "error");
  const auto sink = stderr_log("shardflow mld-server");
  const auto lines = testing::stderr_lines_of([&sink] {
    sink(log_level::error, "session-3 failed");
    sink(log_level::info, "second");
  });
  REQUIRE(lines.size() == 2);
  const auto& first = lines[0];
  const auto& second = lines[1];
  CHECK(first.size()
        == std::string{"2026-12-01T21:54:03.120Z "}.size()
             + std::string{"error shardflow mld-server: session-3 failed"}.size());
  CHECK(first.substr(4, 1) == "-");
  CHECK(first.substr(23, 2) == "Z ");
  CHECK(first.substr(25) == "error shardflow mld-server: session-3 failed");
  CHECK(second.substr(25) == "info shardflow mld-server: second");
}

SCENARIO("a line about one shard names it in the json field shard, other lines have no shard",
         "[core][log]") {
  using namespace std::chrono;
  const auto at = system_clock::time_point{seconds{1'796'162'043} + milliseconds{120}};
  CHECK(split_shard("shard-00001: flushed").shard == "shard-00001");
  CHECK(split_shard("shard-00001: flushed").text == "flushed");
  CHECK(split_shard("shardId-000000000001: a: b").shard == "shardId-000000000001");
  CHECK(split_shard("shardId-000000000001: a: b").text == "a: b");
  CHECK(split_shard("the runtime ended: x").shard.empty());
  CHECK(split_shard("fatal: x").shard.empty());
  CHECK(split_shard("shard-: x").shard.empty());
  CHECK(split_shard("shard-1x: x").shard.empty());
  CHECK(split_shard("no colon").text == "no colon");
  CHECK(log_json_line(at, log_level::warning, "shard-00002: cannot \"save\"\n")
        == R"({"time":"2026-12-01T21:54:03.120Z","level":"warning","shard":"shard-00002",)"
           R"("message":"cannot \"save\"\n"})");
  CHECK(log_json_line(at, log_level::info, "put: 2 records")
        == R"({"time":"2026-12-01T21:54:03.120Z","level":"info","message":"put: 2 records"})");
  CHECK(json_escape(std::string_view{"a\x01\\", 3}) == "a\\u0001\\\\");
}

SCENARIO("at_least drops the lines below its level", "[core][log]") {
  std::vector<std::string> seen;
  auto sink = at_least(log_level::warning, [&seen](log_level level, std::string_view x) {
    seen.push_back(std::string{to_string(level)} + " " + std::string{x});
  });
  sink(log_level::debug, "a");
  sink(log_level::info, "b");
  sink(log_level::warning, "c");
  sink(log_level::error, "d");
  CHECK(seen == std::vector<std::string>{"warning c", "error d"});
}

SCENARIO("the json sink writes one object a line on stderr", "[core][log]") {
  const auto sink = stderr_json_log();
  const auto lines = testing::stderr_lines_of([&sink] {
    sink(log_level::error, "shard-00004: gave up");
    sink(log_level::debug, "two\nlines");
  });
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind("{\"time\":\"", 0) == 0);
  CHECK_THAT(lines[0],
             Catch::EndsWith(R"(Z","level":"error","shard":"shard-00004","message":"gave up"})"));
  CHECK_THAT(lines[1], Catch::EndsWith(R"(Z","level":"debug","message":"two\nlines"})"));
}
