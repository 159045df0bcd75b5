// Tests of apps/shardflow/cli_log.hpp: --log-level and --log-format choose the command's sink, and
// plural() counts.
#include "apps/shardflow/cli_log.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "tests/support/captured_stderr.hpp"

using namespace shardflow;
using namespace shardflow::cli;

namespace {

void parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());
  app.parse(args);
}

} // namespace

SCENARIO("--log-level and --log-format choose what cli_log and say write", "[apps][cli_log]") {
  GIVEN("no options") {
    set_cli_log({});
    CLI::App app;
    add_log_options(app);
    parse(app, {});
    auto lines = testing::stderr_lines_of([] {
      say(log_level::debug, "hidden");
      say(log_level::info, "put: {}", plural(2, "record"));
    });
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].substr(24) == " info shardflow: put: 2 records");
  }
  GIVEN("--log-level warning --log-format json") {
    set_cli_log({});
    CLI::App app;
    add_log_options(app);
    parse(app, {"--log-level", "warning", "--log-format", "json"});
    set_cli_program("shardflow run");
    auto lines = testing::stderr_lines_of([] {
      say(log_level::info, "hidden");
      cli_log()(log_level::error, "shard-00003: gave up");
    });
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind("{\"time\":\"", 0) == 0);
    CHECK_THAT(lines[0],
               Catch::EndsWith(R"("level":"error","shard":"shard-00003","message":"gave up"})"));
  }
  GIVEN("a level that does not exist") {
    CLI::App app;
    add_log_options(app);
    CHECK_THROWS_AS(parse(app, {"--log-level", "loud"}), CLI::ValidationError);
  }
  set_cli_log({});
}

SCENARIO("plural counts one thing or many", "[apps][cli_log]") {
  CHECK(plural(0, "record") == "0 records");
  CHECK(plural(1, "record") == "1 record");
  CHECK(plural(2, "record") == "2 records");
  CHECK(plural(1, "batch", "batches") == "1 batch");
  CHECK(plural(3, "batch", "batches") == "3 batches");
}
