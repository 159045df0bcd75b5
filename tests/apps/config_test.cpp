// Tests of apps/shardflow/config.hpp: the strict TOML config (unknown keys and tables, wrong types
// and syntax errors name the file, line and key) and the precedence flag > env > file > default.
#include "apps/shardflow/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "tests/support/temp_dir.hpp"

using namespace shardflow;
using namespace shardflow::cli;

namespace {

// A small app shaped like shardflow's: a global option and a `run` with a few kinds of options.
struct fixture {
  CLI::App app;
  std::string level = "info";
  std::size_t batch_size = 1000;
  std::string interval = "1s";
  bool follow = false;
  int intensity = 10;
  std::string stream;
  std::string json; // as add_json_summary: `--json [FILE]`, a bare --json meaning "-"
  CLI::App* run = nullptr;
  testing::temp_dir dir;

  fixture() {
    app.fallthrough();
    app.set_config("--config");
    app.config_formatter(std::make_shared<strict_toml_config>(app));
    app.add_option("--log-level", level);
    name_env_vars(app);
    run = app.add_subcommand("run");
    run->add_option("stream", stream);
    run->add_option("--batch-size", batch_size)->check(CLI::Range(1, 1 << 24));
    run->add_option("--flush-interval", interval);
    run->add_option("--intensity", intensity);
    run->add_flag("--follow", follow);
    run->add_option("--json", json)->expected(0, 1)->default_str("-");
    run->preparse_callback([this](std::size_t) { name_env_vars(*run); });
    std::filesystem::create_directories(dir.path);
  }

  std::string file(const std::string& text) {
    const auto path = (dir.path / "shardflow.toml").string();
    std::ofstream{path} << text;
    return path;
  }

  void parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  }

  // The message of the ConfigError that parsing `args` throws ("" if none).
  std::string error_of(std::vector<std::string> args) {
    try {
      parse(std::move(args));
    } catch (const CLI::ConfigError& e) {
      return e.what();
    }
    return {};
  }
};

} // namespace

SCENARIO("a config file sets the options of the top level and of the subcommand run",
         "[apps][config]") {
  fixture f;
  auto path = f.file("log-level = \"debug\"\n[run]\nbatch-size = 500\nflush-interval = 5\n"
                     "follow = true\nintensity = -1\n");
  f.parse({"--config", path, "run", "s"});
  CHECK(f.level == "debug");
  CHECK(f.batch_size == 500u);
  CHECK(f.interval == "5");
  CHECK(f.follow);
  CHECK(f.intensity == -1);
  CHECK(f.stream == "s");
}

SCENARIO("an option whose value may be left out takes true, false or its value from a file",
         "[apps][config]") {
  {
    fixture f;
    f.parse({"--config", f.file("[run]\njson = true\n"), "run", "s"});
    CHECK(f.json == "-"); // the bare --json, not a file named "true"
  }
  {
    fixture f;
    f.parse({"--config", f.file("[run]\njson = \"summary.json\"\n"), "run", "s"});
    CHECK(f.json == "summary.json");
  }
  {
    fixture f;
    f.parse({"--config", f.file("[run]\njson = false\n"), "run", "s"});
    CHECK(f.json.empty()); // not given
  }
  {
    fixture f;
    CHECK_THAT(f.error_of({"--config", f.file("[run]\njson = 3\n"), "run", "s"}),
               Catch::Contains("must be true, false or a string, not an integer"));
  }
}

SCENARIO("--config is accepted after the subcommand too", "[apps][config]") {
  fixture f;
  auto path = f.file("[run]\nbatch-size = 7\n");
  f.parse({"run", "s", "--config", path});
  CHECK(f.batch_size == 7u);
}

SCENARIO("an unknown key, a wrong type or a syntax error names the file, line and key",
         "[apps][config]") {
  fixture f;
  auto path = f.file("# settings\n[run]\nbatch-sise = 500\n");
  CHECK(f.error_of({"--config", path, "run", "s"})
        == path
             + ":3: \"batch-sise\" in [run] is not an option of this command (did you mean "
               "batch-size?)");
  fixture g;
  path = g.file("[run]\nfollow = true\nbatch-size = \"many\"\n");
  CHECK(g.error_of({"--config", path, "run", "s"})
        == path + ":3: \"batch-size\" in [run] must be an integer, not a string");
  fixture h;
  path = h.file("[run]\nfollow = 1\n");
  CHECK(h.error_of({"--config", path, "run", "s"})
        == path + ":2: \"follow\" in [run] is a flag: it must be true or false, not an integer");
  fixture i;
  path = i.file("[run\nbatch-size = 5\n");
  CHECK_THAT(i.error_of({"--config", path, "run", "s"}),
             Catch::StartsWith(path + ":1:") && Catch::Contains("not valid TOML"));
  fixture j;
  path = j.file("[rum]\nbatch-size = 5\n");
  CHECK(j.error_of({"--config", path, "run", "s"})
        == path
             + ":1: \"rum\" at the top level is not an option of this command (did you mean "
               "run?)");
  fixture k;
  path = k.file("batch-size = 5\n");
  CHECK_THAT(k.error_of({"--config", path, "run", "s"}),
             Catch::EndsWith(":1: \"batch-size\" at the top level is not an option of this "
                             "command; it is one of run: write it in [run]"));
  fixture l;
  path = l.file("[run]\nstream = \"s\"\n");
  CHECK_THAT(l.error_of({"--config", path, "run", "s"}),
             Catch::Contains(":2: \"stream\" in [run] is not an option"));
}

SCENARIO("a value the option refuses is located in the file", "[apps][config]") {
  fixture f;
  auto config = std::make_shared<strict_toml_config>(f.app);
  f.app.config_formatter(config);
  auto path = f.file("[run]\n\nbatch-size = 0\n");
  std::string message;
  try {
    f.parse({"run", "s", "--config", path});
  } catch (const CLI::ValidationError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::StartsWith("--batch-size: "));
  CHECK_THAT(config->located(message), Catch::StartsWith(path + ":3: --batch-size: "));
  CHECK(config->located("--intensity: x") == "--intensity: x");
}

SCENARIO("the command line beats the environment, which beats the file, which beats the default",
         "[apps][config]") {
  GIVEN("a file with batch-size 500 and flush-interval 5s") {
    fixture f;
    auto path = f.file("[run]\nbatch-size = 500\nflush-interval = \"5s\"\nintensity = 3\n");
    ::setenv("SHARDFLOW_BATCH_SIZE", "600", 1);
    ::setenv("SHARDFLOW_FLUSH_INTERVAL", "6s", 1);
    f.parse({"run", "s", "--config", path, "--batch-size", "700"});
    ::unsetenv("SHARDFLOW_BATCH_SIZE");
    ::unsetenv("SHARDFLOW_FLUSH_INTERVAL");
    CHECK(f.batch_size == 700u); // flag
    CHECK(f.interval == "6s");   // env over file
    CHECK(f.intensity == 3);     // file over default
    CHECK_FALSE(f.follow);       // default
  }
  GIVEN("no file") {
    fixture f;
    ::setenv("SHARDFLOW_FOLLOW", "true", 1);
    f.parse({"run", "s"});
    ::unsetenv("SHARDFLOW_FOLLOW");
    CHECK(f.follow);
  }
}

SCENARIO("options are named in the environment after their long names", "[apps][config]") {
  CHECK(env_var_of("batch-size") == "SHARDFLOW_BATCH_SIZE");
  CHECK(env_var_of("log-level") == "SHARDFLOW_LOG_LEVEL");
  CHECK(env_var_of("batch-size", "kafka run") == "SHARDFLOW_BATCH_SIZE");
}

SCENARIO("an option that means different things to different commands has the command in its "
         "variable",
         "[apps][config]") {
  CHECK(env_var_of("shards", "run") == "SHARDFLOW_RUN_SHARDS");
  CHECK(env_var_of("shards", "generate") == "SHARDFLOW_GENERATE_SHARDS");
  CHECK(env_var_of("checkpoint-interval", "mld") == "SHARDFLOW_MLD_CHECKPOINT_INTERVAL");
  CHECK(env_var_of("listen", "mld properties") == "SHARDFLOW_MLD_PROPERTIES_LISTEN");
  CHECK(env_var_of("stream-name", "kafka run") == "SHARDFLOW_KAFKA_RUN_STREAM_NAME");
  CHECK(env_var_of("records", "generate") == "SHARDFLOW_GENERATE_RECORDS");
  GIVEN("run --shards") {
    fixture f;
    std::string shards = "all";
    f.run->add_option("--shards", shards);
    WHEN("only the bare SHARDFLOW_SHARDS is set") {
      ::setenv("SHARDFLOW_SHARDS", "1", 1);
      f.parse({"run", "s"});
      ::unsetenv("SHARDFLOW_SHARDS");
      THEN("it is not read") {
        CHECK(shards == "all");
      }
    }
    WHEN("SHARDFLOW_RUN_SHARDS is set") {
      ::setenv("SHARDFLOW_RUN_SHARDS", "0,2", 1);
      f.parse({"run", "s"});
      ::unsetenv("SHARDFLOW_RUN_SHARDS");
      THEN("it is") {
        CHECK(shards == "0,2");
      }
    }
  }
}
