#include <shardflow/postgres/postgres_flusher.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/postgres/pg_server.hpp"
#include "tests/support/thrown_code.hpp"

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/conformance.hpp>
#include <shardflow/postgres/pg_connection.hpp>

using namespace shardflow;
using namespace shardflow::postgres;
using namespace std::chrono_literals;
using shardflow::testing::pg_server;
using shardflow::testing::thrown_code;

namespace {

// One server for the whole file (initdb takes seconds); each scenario uses tables of its own.
pg_server& server() {
  static pg_server instance;
  return instance;
}

std::string sql1(const std::string& sql) {
  pg_connection conn{server().conninfo()};
  auto rows = conn.query(sql);
  return rows.empty() || rows[0].empty() ? "" : rows[0][0];
}

void exec(const std::string& sql) {
  pg_connection conn{server().conninfo()};
  conn.exec(sql);
}

postgres_flusher_config config_for(const std::string& table, bool create = true) {
  postgres_flusher_config cfg;
  cfg.conninfo = server().conninfo();
  cfg.table = table;
  cfg.stream = "orders";
  cfg.batch_records = 3;
  cfg.create_table = create;
  cfg.backoff_min = 20ms;
  cfg.backoff_max = 200ms;
  cfg.retry_for = 30s;
  return cfg;
}

stream_record rec(std::uint64_t seq, std::string data) {
  stream_record x;
  x.partition_key = "key-" + std::to_string(seq);
  x.data = std::move(data);
  x.sequence.base = sequence_base{seq};
  return x;
}

std::vector<stream_record> records(std::uint64_t first, std::uint64_t n) {
  std::vector<stream_record> out;
  for (auto i = first; i < first + n; ++i)
    out.push_back(rec(i, fmt::format("{{\"n\": {}}}", i)));
  return out;
}

// Adds every record as the batch processor does (full: flush(partial), offer again), then flushes
// fully; returns every token that came back, sorted.
std::vector<flush_token> run_all(flusher& f, const std::vector<stream_record>& xs) {
  std::vector<flush_token> got;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    auto r = f.add(xs[i], i);
    if (r == add_result::full) {
      auto t = f.flush(flush_mode::partial);
      got.insert(got.end(), t.begin(), t.end());
      r = f.add(xs[i], i);
    }
    REQUIRE(r == add_result::added);
  }
  auto t = f.flush(flush_mode::full);
  got.insert(got.end(), t.begin(), t.end());
  std::sort(got.begin(), got.end());
  return got;
}

std::vector<flush_token> iota(std::size_t n) {
  std::vector<flush_token> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = i;
  return out;
}

} // namespace

SCENARIO("prepare_table creates the table with its key and picks effectively-once", "[postgres]") {
  auto cfg = prepare_table(config_for("t_create"));
  CHECK(cfg.mode == write_mode::effectively_once);
  CHECK(sql1("SELECT count(*) FROM t_create") == "0");
  // A table without the key: plain.
  exec("CREATE TABLE t_nokey (stream text, shard text, sequence numeric, sub_sequence bigint, "
       "partition_key text, arrival timestamptz, data jsonb, data_raw bytea, extra int DEFAULT 7)");
  CHECK(prepare_table(config_for("t_nokey", false)).mode == write_mode::plain);
  auto strict = config_for("t_nokey", false);
  strict.mode = write_mode::effectively_once;
  CHECK_THROWS_WITH(prepare_table(strict), Catch::Contains("effectively-once needs a unique key"));
}

SCENARIO("prepare_table says clearly what is wrong before the first record", "[postgres]") {
  CHECK(thrown_code([] { prepare_table(config_for("t_missing", false)); }) == errc::io_failed);
  CHECK_THROWS_WITH(prepare_table(config_for("t_missing", false)),
                    Catch::Contains("t_missing: does not exist in database postgres")
                      && Catch::Contains("--pg-create-table"));
  exec("CREATE TABLE t_cols (stream text, shard text, sequence numeric, data text)");
  CHECK_THROWS_WITH(prepare_table(config_for("t_cols", false)),
                    Catch::Contains("no column sub_sequence")
                      && Catch::Contains("column data is text, not jsonb"));
  auto wrong = config_for("t_create");
  wrong.conninfo = server().conninfo("wrong");
  CHECK(thrown_code([&] { prepare_table(wrong); }) == errc::io_failed);
  CHECK_THROWS_WITH(prepare_table(wrong), Catch::Contains("password authentication failed"));
  auto bad = config_for("t_create");
  bad.conninfo = "host=127.0.0.1 port";
  CHECK(thrown_code([&] { prepare_table(bad); }) == errc::bad_input);
  auto bad_table = config_for("t; DROP TABLE x");
  CHECK(thrown_code([&] { prepare_table(bad_table); }) == errc::bad_input);
}

SCENARIO("the postgres flusher writes each batch in one transaction, JSON as jsonb", "[postgres]") {
  auto cfg = prepare_table(config_for("t_rows"));
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  auto f = postgres_flusher_factory(cfg, pool)("shard-7");
  auto xs = records(1, 7);
  xs[3].data = "not json\t\\ \x01\xff";
  xs[4].arrival_ms = 1700000000123;
  xs[5].sequence.sub = 9;
  CHECK(run_all(*f, xs) == iota(7));
  CHECK(sql1("SELECT count(*) FROM t_rows") == "7");
  CHECK(sql1("SELECT data->>'n' FROM t_rows WHERE sequence = 1") == "1");
  CHECK(sql1("SELECT data_raw = '\\x6e6f74206a736f6e095c2001ff'::bytea AND data IS NULL FROM "
             "t_rows WHERE sequence = 4")
        == "t");
  CHECK(sql1("SELECT arrival = to_timestamp(1700000000.123) FROM t_rows WHERE sequence = 5")
        == "t");
  CHECK(sql1("SELECT sub_sequence FROM t_rows WHERE sequence = 6") == "9");
  CHECK(sql1("SELECT count(*) FROM t_rows WHERE stream = 'orders' AND shard = 'shard-7' AND "
             "partition_key = 'key-' || sequence::text")
        == "7");
}

SCENARIO("effectively-once: a replay adds no row, plain mode adds it again", "[postgres]") {
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  auto once = postgres_flusher_factory(prepare_table(config_for("t_once")), pool);
  CHECK(run_all(*once("s"), records(1, 10)) == iota(10));
  CHECK(run_all(*once("s"), records(5, 10)) == iota(10)); // a restart replays 5..10, then 11..14
  CHECK(sql1("SELECT count(*) FROM t_once") == "14");
  CHECK(sql1("SELECT count(DISTINCT sequence) FROM t_once") == "14");
  exec("CREATE TABLE t_plain (stream text, shard text, sequence numeric, sub_sequence bigint, "
       "partition_key text, arrival timestamptz, data jsonb, data_raw bytea)");
  auto plain = postgres_flusher_factory(prepare_table(config_for("t_plain", false)), pool);
  CHECK(run_all(*plain("s"), records(1, 10)) == iota(10));
  CHECK(run_all(*plain("s"), records(5, 10)) == iota(10));
  CHECK(sql1("SELECT count(*) FROM t_plain") == "20");
}

SCENARIO("a write the table refuses fails the shard at once, with the server's message",
         "[postgres]") {
  auto cfg = prepare_table(config_for("t_dropped"));
  auto pool = std::make_shared<io_pool>(io_pool_config{1});
  auto f = postgres_flusher_factory(cfg, pool)("s");
  exec("DROP TABLE t_dropped");
  auto xs = records(1, 2);
  REQUIRE(f->add(xs[0], 0) == add_result::added);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(thrown_code([&] { f->flush(flush_mode::full); }) == errc::io_failed);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s); // not retried for retry_for
  CHECK_THROWS_WITH(f->heartbeat(),
                    Catch::Contains("t_dropped") && Catch::Contains("does not exist"));
}

SCENARIO("the postgres flusher keeps the flusher contract", "[postgres]") {
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  auto cfg = prepare_table(config_for("t_contract"));
  REQUIRE_NOTHROW(require_flusher_contract(postgres_flusher_factory(cfg, pool)));
}

SCENARIO("a server restart mid-run is ridden out: the batch is written again, once", "[postgres]") {
  auto cfg = prepare_table(config_for("t_restart"));
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  auto f = postgres_flusher_factory(cfg, pool)("s");
  auto xs = records(1, 9);
  std::vector<flush_token> got;
  for (std::size_t i = 0; i < 3; ++i)
    REQUIRE(f->add(xs[i], i) == add_result::added);
  auto t = f->flush(flush_mode::full); // a connection in the set now
  got.insert(got.end(), t.begin(), t.end());
  server().stop();
  for (std::size_t i = 3; i < 6; ++i)
    REQUIRE(f->add(xs[i], i) == add_result::added);
  t = f->flush(flush_mode::partial); // sealed: a pool thread fails and retries with backoff
  got.insert(got.end(), t.begin(), t.end());
  CHECK(got.size() == 3);
  server().start();
  for (std::size_t i = 6; i < 9; ++i)
    REQUIRE(f->add(xs[i], i) == add_result::added);
  t = f->flush(flush_mode::full);
  got.insert(got.end(), t.begin(), t.end());
  std::sort(got.begin(), got.end());
  CHECK(got == iota(9));
  CHECK(sql1("SELECT count(*) FROM t_restart") == "9");
}
