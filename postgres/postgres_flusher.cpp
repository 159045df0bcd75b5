#include <shardflow/postgres/postgres_flusher.hpp>

#include <algorithm>
#include <ctime>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <simdjson.h>

#include <shardflow/core/error.hpp>
#include <shardflow/postgres/pg_connection.hpp>

namespace shardflow::postgres {

namespace {

constexpr const char* columns
  = "stream, shard, sequence, sub_sequence, partition_key, arrival, data, data_raw";
constexpr const char* key_columns = "stream, shard, sequence, sub_sequence";

// The columns every target table needs, with the types `--create-table` gives them.
constexpr std::pair<const char*, const char*> column_types[] = {
  {"stream", "text"},         {"shard", "text"},         {"sequence", "numeric"},
  {"sub_sequence", "bigint"}, {"partition_key", "text"}, {"arrival", "timestamp with time zone"},
  {"data", "jsonb"},          {"data_raw", "bytea"},
};

[[noreturn]] void fail(const std::string& table, const std::string& what) {
  throw error{errc::io_failed, fmt::format("postgres table {}: {}", table, what)};
}

void check_table_name(const std::string& table) {
  const bool ok = !table.empty() && table.front() != '.' && table.back() != '.'
                  && std::count(table.begin(), table.end(), '.') <= 1
                  && std::all_of(table.begin(), table.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                              || (c >= '0' && c <= '9') || c == '_' || c == '.';
                     });
  if (!ok)
    throw error{errc::bad_input,
                fmt::format("postgres table \"{}\": use NAME or SCHEMA.NAME of letters, digits and "
                            "'_'",
                            table)};
}

std::string create_sql(const std::string& table) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + table + " (";
  for (auto& [name, type] : column_types)
    sql += fmt::format("{} {}{}, ", name, type,
                       std::string_view{name} == "arrival" || std::string_view{name} == "data"
                           || std::string_view{name} == "data_raw"
                         ? ""
                         : " NOT NULL");
  return sql + "PRIMARY KEY (" + key_columns + "))";
}

// Says which required columns are missing or of another type; empty when none.
std::string column_problems(pg_connection& conn, const std::string& table) {
  auto rows = conn.query("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                         {table});
  std::string problems;
  for (auto& [name, type] : column_types) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](auto& r) { return r[0] == name; });
    const bool typed = std::string_view{name} == "data" || std::string_view{name} == "data_raw";
    if (it == rows.end())
      problems += fmt::format("{}no column {} ({})", problems.empty() ? "" : "; ", name, type);
    else if (typed && (*it)[1] != type)
      problems += fmt::format("{}column {} is {}, not {}", problems.empty() ? "" : "; ", name,
                              (*it)[1], type);
  }
  return problems;
}

// Returns whether the table has a unique index on exactly the four key columns.
bool has_key(pg_connection& conn, const std::string& table) {
  auto rows = conn.query(
    "SELECT 1 FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND "
    "i.indnkeyatts = 4 AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM "
    "pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) "
    "= ARRAY['sequence', 'shard', 'stream', 'sub_sequence']",
    {table});
  return !rows.empty();
}

void check_table(pg_connection& conn, postgres_flusher_config& cfg) {
  if (cfg.create_table)
    conn.exec(create_sql(cfg.table));
  if (conn.query("SELECT to_regclass($1)", {cfg.table}).at(0).at(0).empty())
    fail(cfg.table, fmt::format("does not exist in database {} (create it with --pg-create-table)",
                                conn.database()));
  if (auto problems = column_problems(conn, cfg.table); !problems.empty())
    fail(cfg.table, problems);
  if (conn.query("SELECT has_table_privilege($1, 'INSERT')", {cfg.table}).at(0).at(0) != "t")
    fail(cfg.table, "this user may not insert into it");
  const bool key = has_key(conn, cfg.table);
  if (cfg.mode == write_mode::effectively_once && !key)
    fail(cfg.table, fmt::format("effectively-once needs a unique key on ({})", key_columns));
  if (cfg.mode == write_mode::automatic)
    cfg.mode = key ? write_mode::effectively_once : write_mode::plain;
}

void append_arrival(std::string& out, std::int64_t ms) {
  auto secs = ms / 1000;
  auto frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 frac);
}

// Whether jsonb takes `data`: valid UTF-8 JSON without a \u0000 (which jsonb refuses).
bool is_json(const std::string& data) {
  if (data.empty() || data.find("\\u0000") != std::string::npos)
    return false;
  thread_local simdjson::dom::parser parser; // scratch only: nothing is kept between calls
  return parser.parse(data).error() == simdjson::SUCCESS;
}

void append_hex(std::string& out, const std::string& data) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\\\x"; // bytea's \x, its backslash escaped for COPY
  for (unsigned char c : data) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xF]);
  }
}

} // namespace

const char* to_string(write_mode mode) noexcept {
  switch (mode) {
    case write_mode::plain:
      return "plain";
    case write_mode::effectively_once:
      return "effectively-once";
    default:
      return "auto";
  }
}

void append_copy_text(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
}

void append_copy_row(std::string& out, const std::string& prefix, const stream_record& x) {
  out += prefix;
  out += x.sequence.base.to_string();
  const auto& s = x.sequence;
  fmt::format_to(std::back_inserter(out), "\t{}\t",
                 s.user_total > 0 ? s.user_sub : s.sub.value_or(0));
  append_copy_text(out, x.partition_key);
  out.push_back('\t');
  if (x.arrival_ms)
    append_arrival(out, *x.arrival_ms);
  else
    out += "\\N";
  if (is_json(x.data)) {
    out.push_back('\t');
    append_copy_text(out, x.data);
    out += "\t\\N\n";
  } else {
    out += "\t\\N\t";
    append_hex(out, x.data);
    out.push_back('\n');
  }
}

postgres_flusher_config prepare_table(postgres_flusher_config cfg) {
  check_table_name(cfg.table);
  try {
    check_conninfo(cfg.conninfo);
  } catch (const pg_failure& e) {
    throw error{errc::bad_input, fmt::format("--flusher postgres:CONNINFO: {}", e.what())};
  }
  try {
    pg_connection conn{cfg.conninfo};
    check_table(conn, cfg);
  } catch (const pg_failure& e) {
    fail(cfg.table, e.what());
  }
  return cfg;
}

// -- postgres_sink -------------------------------------------------------------------------------

postgres_sink::postgres_sink(shard_id id, const postgres_flusher_config& cfg,
                             std::shared_ptr<pg_connections> conns)
  : id_(std::move(id)), cfg_(cfg), conns_(std::move(conns)) {
  append_copy_text(prefix_, cfg_.stream);
  prefix_.push_back('\t');
  append_copy_text(prefix_, id_);
  prefix_.push_back('\t');
}

void postgres_sink::append(std::string& batch, const stream_record& x) {
  append_copy_row(batch, prefix_, x);
}

void postgres_sink::write(const std::string& batch, std::size_t records) {
  if (batch.empty())
    return;
  const auto deadline = std::chrono::steady_clock::now() + cfg_.retry_for;
  auto backoff = cfg_.backoff_min;
  for (;;) {
    try {
      write_once(batch);
      return;
    } catch (const pg_failure& e) {
      if (!e.transient() || std::chrono::steady_clock::now() + backoff > deadline)
        throw error{errc::io_failed,
                    fmt::format("postgres table {}, shard {}: {}{}", cfg_.table, id_, e.what(),
                                e.transient() ? " (gave up retrying)" : "")};
      retrying(e, records, backoff);
    }
    std::this_thread::sleep_for(backoff); // a pool thread: only this shard's batch waits
    backoff = std::min(backoff * 2, cfg_.backoff_max);
  }
}

void postgres_sink::retrying(const pg_failure& e, std::size_t records,
                             std::chrono::milliseconds backoff) {
  if (cfg_.log)
    cfg_.log(log_level::warning,
             fmt::format("{}: postgres: {}; writing the batch of {} records again in {} ms", id_,
                         e.what(), records, backoff.count()));
}

void postgres_sink::write_once(const std::string& batch) {
  auto conn = conns_->take(); // a connection that failed is dropped, not given back
  if (cfg_.mode == write_mode::effectively_once) {
    conn->exec("BEGIN");
    conn->copy_in(fmt::format("COPY shardflow_stage ({}) FROM STDIN", columns), batch);
    conn->exec(
      fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM shardflow_stage ON CONFLICT ({2}) "
                  "DO NOTHING",
                  cfg_.table, columns, key_columns));
    conn->exec("COMMIT");
  } else {
    conn->copy_in(fmt::format("COPY {} ({}) FROM STDIN", cfg_.table, columns), batch);
  }
  conns_->give_back(std::move(conn));
}

flusher_factory postgres_flusher_factory(postgres_flusher_config cfg,
                                         std::shared_ptr<io_pool> pool) {
  auto on_connect = [staged = cfg.mode == write_mode::effectively_once](pg_connection& conn) {
    if (!staged)
      return;
    conn.exec("CREATE TEMPORARY TABLE IF NOT EXISTS shardflow_stage (stream text, shard text, "
              "sequence numeric, sub_sequence bigint, partition_key text, arrival timestamptz, "
              "data jsonb, data_raw bytea) ON COMMIT DELETE ROWS");
  };
  auto conns = std::make_shared<pg_connections>(cfg.conninfo, on_connect);
  auto sinks = [cfg, conns](const shard_id& id) {
    return std::make_unique<postgres_sink>(id, cfg, conns);
  };
  return pooled_flusher::factory(std::move(pool), std::move(sinks),
                                 pooled_flusher_config{cfg.batch_records, cfg.max_in_flight});
}

} // namespace shardflow::postgres
