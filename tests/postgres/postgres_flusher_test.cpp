#include <shardflow/postgres/postgres_flusher.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/postgres/commit_cutter.hpp"
#include "tests/postgres/pg_server.hpp"
#include "tests/support/thrown_code.hpp"

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/conformance.hpp>
#include <shardflow/postgres/pg_connection.hpp>

using namespace shardflow;
using namespace shardflow::postgres;
using namespace std::chrono_literals;
using shardflow::testing::commit_cutter;
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
  conn.exec("SET client_min_messages = warning"); // no NOTICE for DROP TABLE IF EXISTS
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
  const auto format = GENERATE(copy_format::binary, copy_format::text);
  INFO("COPY format " << to_string(format));
  exec("DROP TABLE IF EXISTS t_rows");
  auto cfg = config_for("t_rows");
  cfg.format = format;
  cfg = prepare_table(cfg);
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

SCENARIO("--pg-columns and --pg-data: the columns named, in their order, data as bytea or text",
         "[postgres]") {
  const auto format = GENERATE(copy_format::binary, copy_format::text);
  INFO("COPY format " << to_string(format));
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  exec("DROP TABLE IF EXISTS t_cols_b, t_cols_t");
  auto cfg = config_for("t_cols_b");
  cfg.format = format;
  cfg.columns = parse_columns("sequence=seq,data=payload,shard=src");
  cfg.data = data_type::bytea;
  cfg = prepare_table(cfg);
  CHECK(cfg.mode == write_mode::plain); // no key columns: no key, plain
  auto xs = records(1, 4);
  xs[2].data = std::string{"\0\xff\t", 3};
  CHECK(run_all(*postgres_flusher_factory(cfg, pool)("s-1"), xs) == iota(4));
  CHECK(sql1("SELECT string_agg(seq::text || ':' || src, ',' ORDER BY seq) FROM t_cols_b")
        == "1:s-1,2:s-1,3:s-1,4:s-1");
  CHECK(sql1("SELECT encode(payload, 'hex') FROM t_cols_b WHERE seq = 3") == "00ff09");
  CHECK(sql1("SELECT convert_from(payload, 'UTF8') FROM t_cols_b WHERE seq = 1") == "{\"n\": 1}");
  auto text = config_for("t_cols_t");
  text.format = format;
  text.columns = parse_columns("stream,shard,sequence,sub_sequence,data");
  text.data = data_type::text;
  text = prepare_table(text);
  CHECK(text.mode == write_mode::effectively_once);
  CHECK(run_all(*postgres_flusher_factory(text, pool)("s"), records(1, 5)) == iota(5));
  CHECK(run_all(*postgres_flusher_factory(text, pool)("s"), records(3, 5)) == iota(5));
  CHECK(sql1("SELECT count(*) || ' ' || max(data) FROM t_cols_t") == "7 {\"n\": 7}");
}

SCENARIO("a column the table lacks or types otherwise is a clear error before the first record",
         "[postgres]") {
  exec("CREATE TABLE t_mismatch (stream text, shard text, seq bigint, data bytea)");
  auto cfg = config_for("t_mismatch", false);
  cfg.columns = parse_columns("stream,shard,sequence=seq,data,partition_key");
  cfg.data = data_type::text;
  CHECK(thrown_code([&] { prepare_table(cfg); }) == errc::io_failed);
  CHECK_THROWS_WITH(prepare_table(cfg), Catch::Contains("column seq is bigint, not numeric")
                                          && Catch::Contains("column data is bytea, not text")
                                          && Catch::Contains("no column partition_key (text")
                                          && Catch::Contains("--pg-columns"));
  // Choices that contradict each other are usage errors, before any connection.
  auto raw = config_for("t_mismatch", false);
  raw.conninfo = "host=127.0.0.1 port=1"; // never reached
  raw.columns = parse_columns("data");
  CHECK_THROWS_WITH(prepare_table(raw),
                    Catch::Contains("data_raw") && Catch::Contains("go together"));
  raw.columns = parse_columns("data,data_raw");
  raw.data = data_type::bytea;
  CHECK(thrown_code([&] { prepare_table(raw); }) == errc::bad_input);
  raw.columns = parse_columns("stream,sequence");
  raw.data = data_type::jsonb;
  raw.mode = write_mode::effectively_once;
  CHECK_THROWS_WITH(prepare_table(raw), Catch::Contains("needs stream, shard, sequence and "
                                                        "sub_sequence"));
}

SCENARIO("a COMMIT whose answer is lost: the batch is written again, and adds no row twice",
         "[postgres]") {
  auto cfg = config_for("t_lost_commit");
  cfg.format = copy_format::text; // the cutter finds CopyDone in a text COPY only
  cfg = prepare_table(cfg);
  REQUIRE(cfg.mode == write_mode::effectively_once);
  commit_cutter cutter{server().port()};
  cfg.conninfo = fmt::format("host=127.0.0.1 port={} user=shardflow password=secret "
                             "dbname=postgres sslmode=disable connect_timeout=5",
                             cutter.port());
  std::vector<std::string> warnings;
  std::mutex mu;
  cfg.log = [&](log_level, std::string_view line) {
    std::lock_guard<std::mutex> guard{mu};
    warnings.emplace_back(line);
  };
  auto pool = std::make_shared<io_pool>(io_pool_config{1});
  auto f = postgres_flusher_factory(cfg, pool)("s");
  auto xs = records(1, 6);
  for (std::size_t i = 0; i < 3; ++i)
    REQUIRE(f->add(xs[i], i) == add_result::added);
  CHECK(f->flush(flush_mode::full).size() == 3); // connected through the proxy, nothing cut
  cutter.arm();
  for (std::size_t i = 3; i < 6; ++i)
    REQUIRE(f->add(xs[i], i) == add_result::added);
  auto t = f->flush(flush_mode::full);
  CHECK(t == std::vector<flush_token>{3, 4, 5});
  CHECK(cutter.cuts() == 1);
  CHECK(sql1("SELECT count(*) || ' ' || count(DISTINCT sequence) FROM t_lost_commit") == "6 6");
  std::lock_guard<std::mutex> guard{mu};
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("writing the batch of 3 records again"));
}

SCENARIO("what the server says outside a result goes to the connection's log sink", "[postgres]") {
  std::vector<std::pair<log_level, std::string>> lines;
  pg_connection conn{server().conninfo(), [&](log_level level, std::string_view text) {
                       lines.emplace_back(level, std::string{text});
                     }};
  conn.exec("DO $$ BEGIN RAISE NOTICE 'from the server'; END $$");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].first == log_level::warning);
  CHECK(lines[0].second == "postgres: NOTICE:  from the server");
}

SCENARIO("prepare_table logs the mode it picked", "[postgres]") {
  exec("DROP TABLE IF EXISTS t_mode_logged");
  std::vector<std::string> lines;
  auto cfg = config_for("t_mode_logged");
  cfg.log = [&](log_level, std::string_view text) { lines.emplace_back(text); };
  CHECK(prepare_table(cfg).mode == write_mode::effectively_once);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::StartsWith("postgres table t_mode_logged: effectively-once"));
}
