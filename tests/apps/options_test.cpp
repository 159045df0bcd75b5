#include "apps/shardflow/options.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace shardflow::cli;
using namespace std::chrono_literals;

SCENARIO("durations, sizes, flusher specs, shard lists and addresses parse or are refused",
         "[apps][options]") {
  CHECK(*parse_duration("--x", "0") == 0ms);
  CHECK(*parse_duration("--x", "250ms") == 250ms);
  CHECK(*parse_duration("--x", "5s") == 5000ms);
  CHECK(*parse_duration("--x", "5") == 5000ms);
  CHECK(*parse_duration("--x", "2m") == 120000ms);
  CHECK(*parse_duration("--x", "1h") == 3600000ms);
  CHECK_FALSE(parse_duration("--x", "5parsecs"));
  CHECK_FALSE(parse_duration("--x", "-1s"));
  CHECK_FALSE(parse_duration("--x", ""));
  CHECK(*parse_size("--x", "64k") == 65536u);
  CHECK(*parse_size("--x", "1G") == (1ull << 30));
  CHECK_FALSE(parse_size("--x", "1T"));
  auto f = parse_flusher("file:/tmp/out");
  REQUIRE(f);
  CHECK(f.error().empty());
  CHECK(f->name == "file");
  CHECK(f->argument == "/tmp/out");
  CHECK(parse_flusher("null"));
  CHECK_FALSE(parse_flusher("file"));
  CHECK_FALSE(parse_flusher("null:x"));
  CHECK_THAT(parse_flusher("kinesis").error(), Catch::Contains("unknown flusher"));
  auto shards = parse_shard_list("all", 3);
  REQUIRE(shards);
  CHECK(*shards == std::vector<std::size_t>{0, 1, 2});
  shards = parse_shard_list("0,2,5-7", 8);
  REQUIRE(shards);
  CHECK(*shards == std::vector<std::size_t>{0, 2, 5, 6, 7});
  CHECK_THAT(parse_shard_list("9", 8).error(), Catch::Contains("does not exist"));
  CHECK_FALSE(parse_shard_list("3-1", 8));
  CHECK_THAT(parse_shard_list("", 8).error(), Catch::Contains("empty"));
  CHECK_FALSE(parse_shard_list("1,,2", 8));
  auto hp = parse_host_port("--metrics", "127.0.0.1:9464");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 9464);
  hp = parse_host_port("--metrics", ":80");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK_FALSE(parse_host_port("--metrics", "localhost"));
  CHECK_FALSE(parse_host_port("--metrics", "h:70000"));
}

SCENARIO("a value that does not parse says which option and what would be right",
         "[apps][options]") {
  CHECK(parse_duration("--flush-interval", "5parsecs").error()
        == "--flush-interval: \"5parsecs\" is not a duration (use 0, 250ms, 5s, 2m, 1h)");
  CHECK(parse_size("--roll-size", "1T").error()
        == "--roll-size: \"1T\" is not a size (use 1000, 64k, 256M, 1G)");
  CHECK(parse_host_port("--metrics", "localhost").error()
        == "--metrics: \"localhost\" is not HOST:PORT");
  CHECK_THAT(parse_flusher("file").error(), Catch::Contains("--flusher file:DIR"));
}

SCENARIO("only loopback hosts count as loopback, by their text", "[apps][options]") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.4.5.6"));
  CHECK(is_loopback_host("localhost"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("[::1]"));
  CHECK(is_loopback_host("::ffff:127.0.0.1"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("::"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("128.0.0.1"));
  CHECK_FALSE(is_loopback_host("127.0.0.1.example.com"));
  CHECK_FALSE(is_loopback_host("example.com"));
  CHECK_FALSE(is_loopback_host(""));
}

SCENARIO("a listen address is a unix socket path or HOST:PORT", "[apps][options]") {
  auto a = parse_listen_address("--listen", "unix:/tmp/s", false);
  REQUIRE(a);
  CHECK(a->unix_path == "/tmp/s");
  a = parse_listen_address("--listen", "[::1]:7400", false);
  REQUIRE(a);
  CHECK(a->host == "::1");
  CHECK(a->port == 7400);
  CHECK(a->unix_path.empty());
  CHECK_FALSE(parse_listen_address("--listen", "h:0", false));
  CHECK(parse_listen_address("--listen", "h:0", true));
  CHECK_THAT(parse_listen_address("--listen", "unix:", false).error(),
             Catch::Contains("names no socket path"));
}

SCENARIO("a mistyped word finds the name it was meant to be", "[apps][options]") {
  CHECK(edit_distance("", "") == 0u);
  CHECK(edit_distance("rn", "run") == 1u);
  CHECK(edit_distance("batch-sise", "batch-size") == 1u);
  CHECK(edit_distance("follwo", "follow") == 1u); // a swap of neighbours
  CHECK(edit_distance("kitten", "sitting") == 3u);
  const std::vector<std::string> commands{"put", "generate", "run", "mld", "mld-server"};
  CHECK(closest("rn", commands) == "run");
  CHECK(closest("generat", commands) == "generate");
  CHECK(closest("mld-sever", commands) == "mld-server");
  CHECK(closest("xyzzy", commands).empty());
  CHECK(closest("batch-sise", {"batch-size", "flush-interval"}) == "batch-size");
}
