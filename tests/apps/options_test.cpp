#include "apps/shardflow/options.hpp"

#include <catch2/catch.hpp>

using namespace shardflow::cli;
using namespace std::chrono_literals;

SCENARIO("durations, sizes, flusher specs, shard lists and addresses parse or are refused",
         "[apps][options]") {
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("5s") == 5000ms);
  CHECK(parse_duration("5") == 5000ms);
  CHECK(parse_duration("2m") == 120000ms);
  CHECK(parse_duration("1h") == 3600000ms);
  CHECK_FALSE(parse_duration("5parsecs"));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration(""));
  CHECK(parse_size("64k") == 65536u);
  CHECK(parse_size("1G") == (1ull << 30));
  CHECK_FALSE(parse_size("1T"));
  flusher_spec f;
  CHECK(parse_flusher("file:/tmp/out", f).empty());
  CHECK(f.name == "file");
  CHECK(f.argument == "/tmp/out");
  CHECK(parse_flusher("null", f).empty());
  CHECK_FALSE(parse_flusher("file", f).empty());
  CHECK_FALSE(parse_flusher("null:x", f).empty());
  CHECK_THAT(parse_flusher("kafka", f), Catch::Contains("unknown flusher"));
  std::vector<std::size_t> shards;
  CHECK(parse_shard_list("all", 3, shards).empty());
  CHECK(shards == std::vector<std::size_t>{0, 1, 2});
  CHECK(parse_shard_list("0,2,5-7", 8, shards).empty());
  CHECK(shards == std::vector<std::size_t>{0, 2, 5, 6, 7});
  CHECK_THAT(parse_shard_list("9", 8, shards), Catch::Contains("does not exist"));
  CHECK_FALSE(parse_shard_list("3-1", 8, shards).empty());
  std::string host;
  int port = 0;
  CHECK(parse_host_port("127.0.0.1:9464", host, port));
  CHECK(host == "127.0.0.1");
  CHECK(port == 9464);
  CHECK(parse_host_port(":80", host, port));
  CHECK(host == "127.0.0.1");
  CHECK_FALSE(parse_host_port("localhost", host, port));
  CHECK_FALSE(parse_host_port("h:70000", host, port));
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
  listen_address a;
  CHECK(parse_listen_address("--listen", "unix:/tmp/s", false, a).empty());
  CHECK(a.unix_path == "/tmp/s");
  CHECK(parse_listen_address("--listen", "[::1]:7400", false, a).empty());
  CHECK(a.host == "::1");
  CHECK(a.port == 7400);
  CHECK(a.unix_path.empty());
  CHECK_FALSE(parse_listen_address("--listen", "h:0", false, a).empty());
  CHECK(parse_listen_address("--listen", "h:0", true, a).empty());
  CHECK_FALSE(parse_listen_address("--listen", "unix:", false, a).empty());
}
