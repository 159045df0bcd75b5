#include <shardflow/postgres/postgres_flusher.hpp>

#include <algorithm>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/postgres/pg_connection.hpp>

namespace shardflow::postgres {

namespace {

constexpr column_role key_roles[] = {column_role::stream, column_role::shard,
                                     column_role::sequence, column_role::sub_sequence};

[[noreturn]] void fail(const std::string& table, const std::string& what) {
  throw error{errc::io_failed, fmt::format("postgres table {}: {}", table, what)};
}

[[noreturn]] void bad(const std::string& what) {
  throw error{errc::bad_input, what};
}

const column* find(const std::vector<column>& columns, column_role role) {
  auto it = std::find_if(columns.begin(), columns.end(),
                         [&](const column& c) { return c.role == role; });
  return it == columns.end() ? nullptr : &*it;
}

// The key columns' names, in key order; empty when a key role is not among the columns.
std::vector<std::string> key_names(const std::vector<column>& columns) {
  std::vector<std::string> out;
  for (auto role : key_roles) {
    const auto* c = find(columns, role);
    if (c == nullptr)
      return {};
    out.push_back(c->name);
  }
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_table_name(const std::string& table) {
  const bool ok = !table.empty() && table.front() != '.' && table.back() != '.'
                  && std::count(table.begin(), table.end(), '.') <= 1
                  && std::all_of(table.begin(), table.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                              || (c >= '0' && c <= '9') || c == '_' || c == '.';
                     });
  if (!ok)
    bad(fmt::format("postgres table \"{}\": use NAME or SCHEMA.NAME of letters, digits and '_'",
                    table));
}

// The choices that contradict each other, before anything is connected.
void check_choices(const postgres_flusher_config& cfg) {
  if (cfg.columns.empty())
    bad("--pg-columns: no column");
  const bool data = find(cfg.columns, column_role::data) != nullptr;
  const bool raw = find(cfg.columns, column_role::data_raw) != nullptr;
  if (cfg.data != data_type::jsonb && raw)
    bad(fmt::format("--pg-columns: data_raw holds the payloads that are not JSON under --pg-data "
                    "jsonb only (--pg-data is {}: every payload goes to data)",
                    to_string(cfg.data)));
  if (cfg.data == data_type::jsonb && data != raw)
    bad("--pg-columns: under --pg-data jsonb, data (the JSON payloads, jsonb) and data_raw (the "
        "others, bytea) go together, or a payload would be lost; or use --pg-data bytea or text");
  if (cfg.mode == write_mode::effectively_once && key_names(cfg.columns).empty())
    bad("--pg-mode effectively-once: --pg-columns needs stream, shard, sequence and "
        "sub_sequence (the key)");
}

std::string create_sql(const postgres_flusher_config& cfg) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + cfg.table + " (";
  bool first = true;
  for (auto& c : cfg.columns) {
    const bool nullable = c.role == column_role::arrival || c.role == column_role::data
                          || c.role == column_role::data_raw;
    sql += fmt::format("{}{} {}{}", first ? "" : ", ", c.name, sql_type(c.role, cfg.data),
                       nullable ? "" : " NOT NULL");
    first = false;
  }
  if (auto key = key_names(cfg.columns); !key.empty())
    sql += ", PRIMARY KEY (" + joined(key) + ")";
  return sql + ")";
}

bool same_type(const std::string& have, const char* want) {
  return have == want
         || (std::string_view{want} == "text" && have.rfind("character varying", 0) == 0);
}

// Says which columns are missing or of another type; empty when none.
std::string column_problems(pg_connection& conn, const postgres_flusher_config& cfg) {
  auto rows = conn.query("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                         {cfg.table});
  std::string problems;
  for (auto& c : cfg.columns) {
    const char* type = sql_type(c.role, cfg.data);
    auto it = std::find_if(rows.begin(), rows.end(), [&](auto& r) { return r[0] == c.name; });
    if (it == rows.end())
      problems += fmt::format("{}no column {} ({}, for {})", problems.empty() ? "" : "; ", c.name,
                              type, to_string(c.role));
    else if (!same_type((*it)[1], type))
      problems += fmt::format("{}column {} is {}, not {}", problems.empty() ? "" : "; ", c.name,
                              (*it)[1], type);
  }
  return problems;
}

// Returns whether the table has a unique index on exactly the key columns.
bool has_key(pg_connection& conn, const postgres_flusher_config& cfg) {
  auto key = key_names(cfg.columns);
  if (key.empty())
    return false;
  std::sort(key.begin(), key.end());
  std::string names;
  for (auto& k : key)
    names += (names.empty() ? "" : ",") + k;
  auto rows = conn.query(
    "SELECT 1 FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND "
    "i.indnkeyatts = 4 AND (SELECT string_agg(a.attname::text, ',' ORDER BY a.attname::text) "
    "FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = $2",
    {cfg.table, names});
  return !rows.empty();
}

void check_table(pg_connection& conn, postgres_flusher_config& cfg) {
  if (cfg.create_table)
    conn.exec(create_sql(cfg));
  if (conn.query("SELECT to_regclass($1)", {cfg.table}).at(0).at(0).empty())
    fail(cfg.table, fmt::format("does not exist in database {} (create it with --pg-create-table)",
                                conn.database()));
  if (auto problems = column_problems(conn, cfg); !problems.empty())
    fail(cfg.table, problems + " (--pg-columns and --pg-data say what is written)");
  if (conn.query("SELECT has_table_privilege($1, 'INSERT')", {cfg.table}).at(0).at(0) != "t")
    fail(cfg.table, "this user may not insert into it");
  const bool key = has_key(conn, cfg);
  if (cfg.mode == write_mode::effectively_once && !key)
    fail(cfg.table, fmt::format("effectively-once needs a unique key on ({})",
                                joined(key_names(cfg.columns))));
  const bool picked = cfg.mode == write_mode::automatic;
  if (picked)
    cfg.mode = key ? write_mode::effectively_once : write_mode::plain;
  // A replay stages its rows in a temporary table: without the right to make one, the job would
  // run until its first replay and then fail every replaying shard, when recovery is needed.
  if (cfg.mode == write_mode::effectively_once
      && conn.query("SELECT has_database_privilege(current_database(), 'TEMPORARY')").at(0).at(0)
           != "t")
    fail(cfg.table, fmt::format("effectively-once{} stages a replayed batch in a temporary table, "
                                "and this user may not create one in database {} (GRANT "
                                "TEMPORARY ON DATABASE {} TO the user, or --pg-mode plain)",
                                picked ? " (picked by --pg-mode auto: the table has a unique key "
                                         "on the record's key columns)"
                                       : "",
                                conn.database(), conn.database()));
  const auto key_text = joined(key_names(cfg.columns));
  if (!cfg.log)
    return;
  if (cfg.mode == write_mode::effectively_once) {
    cfg.log(log_level::info,
            fmt::format("postgres table {}: effectively-once (a unique key on ({})): a replayed "
                        "record adds nothing",
                        cfg.table, key_text));
    return;
  }
  cfg.log(log_level::info,
          fmt::format("postgres table {}: plain{}: a replay after a crash writes its rows again",
                      cfg.table,
                      key_text.empty() ? std::string{" (--pg-columns has no record key)"}
                                       : fmt::format(" (no unique key on exactly ({}))", key_text)));
  // Another unique key on columns the flusher writes makes a replayed row fail its shard instead
  // of being written again (one over a column it leaves to its default, a bigserial id, does not).
  std::string written;
  for (const auto& c : cfg.columns)
    written += (written.empty() ? "" : ",") + c.name;
  const auto others = conn.query(
    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = $1::regclass AND "
    "i.indisunique AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND "
    "a.attnum = ANY(i.indkey) AND a.attname <> ALL(string_to_array($2, ','))) ORDER BY "
    "i.indexrelid",
    {cfg.table, written});
  for (const auto& row : others)
    cfg.log(log_level::warning,
            fmt::format("postgres table {}: in plain mode a replayed row violates its unique index "
                        "({}) and fails its shard until it gives up; a unique key on exactly ({}) "
                        "makes replays effectively-once",
                        cfg.table, row.at(0),
                        key_text.empty() ? std::string{"stream, shard, sequence, sub_sequence"}
                                         : key_text));
}

std::string copy_sql(const std::string& table, const postgres_flusher_config& cfg) {
  return fmt::format("COPY {} ({}) FROM STDIN{}", table, column_list(cfg.columns),
                     cfg.format == copy_format::binary ? " (FORMAT binary)" : "");
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

postgres_flusher_config prepare_table(postgres_flusher_config cfg) {
  check_table_name(cfg.table);
  check_choices(cfg);
  try {
    check_conninfo(cfg.conninfo);
  } catch (const pg_failure& e) {
    throw error{errc::bad_input, fmt::format("--flusher postgres:CONNINFO: {}", e.what())};
  }
  try {
    pg_connection conn{cfg.conninfo, cfg.log};
    check_table(conn, cfg);
  } catch (const pg_failure& e) {
    fail(cfg.table, e.what());
  }
  return cfg;
}

// -- postgres_sink -------------------------------------------------------------------------------

postgres_sink::postgres_sink(shard_id id, const postgres_flusher_config& cfg,
                             std::shared_ptr<pg_connections> conns,
                             std::shared_ptr<group_commit> group)
  : id_(std::move(id)),
    cfg_(cfg),
    rows_(cfg.columns, cfg.data, cfg.format, cfg.stream, id_),
    conns_(std::move(conns)),
    group_(std::move(group)) {
  // nop
}

void postgres_sink::append(std::string& batch, const stream_record& x) {
  rows_.append(batch, x);
}

void postgres_sink::write(const std::string& batch, std::size_t records) {
  if (batch.empty())
    return;
  const auto deadline = std::chrono::steady_clock::now() + cfg_.retry_for;
  auto backoff = cfg_.backoff_min;
  for (bool grouped = true;; grouped = false) {
    try {
      if (grouped && !group_->write(batch))
        continue; // its group failed: alone now, so only the shard whose row is refused fails
      if (!grouped)
        write_rows(*conns_, cfg_, {&batch}, true);
      return;
    } catch (const pg_failure& e) {
      if (grouped && e.sqlstate() == "23505" && cfg_.mode == write_mode::effectively_once)
        continue; // a replayed row is in the table: the staged write skips it
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

void write_rows(pg_connections& conns, const postgres_flusher_config& cfg,
                const std::vector<const std::string*>& batches, bool staged) {
  std::vector<const std::string*> data;
  data.reserve(batches.size() + 2);
  data.push_back(&copy_header(cfg.format));
  data.insert(data.end(), batches.begin(), batches.end());
  data.push_back(&copy_trailer(cfg.format));
  auto conn = conns.take(); // a connection that failed is dropped, not given back
  if (staged && cfg.mode == write_mode::effectively_once) {
    conn->exec("BEGIN");
    conn->copy_in(copy_sql("shardflow_stage", cfg), data);
    conn->exec(fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM shardflow_stage ON CONFLICT "
                           "({2}) DO NOTHING",
                           cfg.table, column_list(cfg.columns), joined(key_names(cfg.columns))));
    conn->exec("COMMIT");
  } else {
    conn->copy_in(copy_sql(cfg.table, cfg), data);
  }
  conns.give_back(std::move(conn));
}

flusher_factory postgres_flusher_factory(postgres_flusher_config cfg,
                                         std::shared_ptr<io_pool> pool) {
  auto on_connect = [cfg](pg_connection& conn) {
    if (cfg.mode != write_mode::effectively_once)
      return;
    std::string columns;
    for (auto& c : cfg.columns)
      columns += fmt::format("{}{} {}", columns.empty() ? "" : ", ", c.name,
                             sql_type(c.role, cfg.data));
    conn.exec("CREATE TEMPORARY TABLE IF NOT EXISTS shardflow_stage (" + columns
              + ") ON COMMIT DELETE ROWS");
  };
  auto conns = std::make_shared<pg_connections>(cfg.conninfo, on_connect, cfg.log);
  auto group = std::make_shared<group_commit>(
    [cfg, conns](const std::vector<const std::string*>& batches) {
      write_rows(*conns, cfg, batches, false);
    },
    cfg.group);
  auto sinks = [cfg, conns, group](const shard_id& id) {
    return std::make_unique<postgres_sink>(id, cfg, conns, group);
  };
  return pooled_flusher::factory(std::move(pool), std::move(sinks),
                                 pooled_flusher_config{cfg.batch_records, cfg.max_in_flight});
}

} // namespace shardflow::postgres
