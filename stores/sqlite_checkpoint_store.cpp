#include <shardflow/stores/sqlite_checkpoint_store.hpp>

#include <sqlite3.h>

#include <system_error>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

// A prepared statement that finalizes itself.
class statement {
public:
  statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      stmt_ = nullptr;
  }
  ~statement() {
    sqlite3_finalize(stmt_);
  }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  sqlite3_stmt* get() const noexcept {
    return stmt_;
  }
  explicit operator bool() const noexcept {
    return stmt_ != nullptr;
  }

private:
  sqlite3_stmt* stmt_ = nullptr;
};

void bind_text(sqlite3_stmt* s, int i, const std::string& text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

} // namespace

sqlite_checkpoint_store::sqlite_checkpoint_store(std::filesystem::path path, std::string stream,
                                                 std::chrono::milliseconds busy_timeout)
  : path_(std::move(path)), stream_(std::move(stream)), busy_timeout_(busy_timeout) {
  try {
    make_parent_directory();
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr)
        != SQLITE_OK)
      fail("cannot open");
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout_.count()));
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS checkpoints ("
         " stream TEXT NOT NULL, shard TEXT NOT NULL,"
         " sequence TEXT, sub INTEGER, user_sub INTEGER NOT NULL DEFAULT 0,"
         " user_total INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 0,"
         " ended INTEGER NOT NULL DEFAULT 0,"
         " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
         " PRIMARY KEY (stream, shard))");
  } catch (...) {
    sqlite3_close(db_); // the destructor does not run for a constructor that throws
    db_ = nullptr;
    throw;
  }
}

void sqlite_checkpoint_store::make_parent_directory() {
  const auto dir = path_.parent_path();
  if (dir.empty())
    return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw error{errc::checkpoint_failed,
                fmt::format("checkpoint database {}: cannot create the directory {}: {}",
                            path_.string(), dir.string(), ec.message())};
}

sqlite_checkpoint_store::~sqlite_checkpoint_store() {
  sqlite3_close(db_);
}

void sqlite_checkpoint_store::fail(const std::string& what) {
  throw error{errc::checkpoint_failed,
              fmt::format("checkpoint database {}: {}: {}", path_.string(), what,
                          db_ ? sqlite3_errmsg(db_) : "out of memory")};
}

void sqlite_checkpoint_store::exec(const char* sql) {
  char* msg = nullptr;
  const auto rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc == SQLITE_OK)
    return;
  std::string why = msg ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  std::string hint;
  switch (rc & 0xFF) { // the primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      hint = fmt::format(" (another process holds it locked; waited {} ms)", busy_timeout_.count());
      break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      hint = " (is it a shardflow checkpoint database?)";
      break;
    default:
      break;
  }
  throw error{errc::checkpoint_failed,
              fmt::format("checkpoint database {}: {}{}", path_.string(), why, hint)};
}

stored_checkpoint sqlite_checkpoint_store::read_row(const shard_id& id) {
  statement s{db_, "SELECT sequence, sub, user_sub, user_total, generation, ended FROM checkpoints"
                   " WHERE stream = ?1 AND shard = ?2"};
  if (!s)
    fail("cannot read");
  bind_text(s.get(), 1, stream_);
  bind_text(s.get(), 2, id);
  stored_checkpoint row;
  const auto rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE)
    return row;
  if (rc != SQLITE_ROW)
    fail("cannot read");
  if (sqlite3_column_type(s.get(), 0) != SQLITE_NULL) {
    sequence_number seq;
    seq.base = sequence_base::parse(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
    if (sqlite3_column_type(s.get(), 1) != SQLITE_NULL)
      seq.sub = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1));
    seq.user_sub = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 2));
    seq.user_total = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 3));
    row.position = seq;
  }
  row.generation = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 4));
  row.ended = sqlite3_column_int64(s.get(), 5) != 0;
  return row;
}

stored_checkpoint sqlite_checkpoint_store::load(const shard_id& id) {
  exec("BEGIN IMMEDIATE");
  try {
    statement s{db_, "INSERT INTO checkpoints (stream, shard, generation) VALUES (?1, ?2, 1)"
                     " ON CONFLICT (stream, shard) DO UPDATE SET generation = generation + 1"};
    if (!s)
      fail("cannot fence");
    bind_text(s.get(), 1, stream_);
    bind_text(s.get(), 2, id);
    if (sqlite3_step(s.get()) != SQLITE_DONE)
      fail("cannot fence");
    auto row = read_row(id);
    exec("COMMIT");
    return row;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void sqlite_checkpoint_store::save(const shard_id& id, std::uint64_t generation,
                                   const checkpoint& cp) {
  exec("BEGIN IMMEDIATE");
  try {
    auto row = read_row(id);
    apply_checkpoint(row, id, generation, cp);
    statement s{db_, "INSERT INTO checkpoints (stream, shard, sequence, sub, user_sub, user_total,"
                     " generation, ended) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                     " ON CONFLICT (stream, shard) DO UPDATE SET sequence = ?3, sub = ?4,"
                     " user_sub = ?5, user_total = ?6, ended = ?8,"
                     " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')"};
    if (!s)
      fail("cannot write");
    bind_text(s.get(), 1, stream_);
    bind_text(s.get(), 2, id);
    if (row.position) {
      bind_text(s.get(), 3, row.position->base.to_string());
      if (row.position->sub)
        sqlite3_bind_int64(s.get(), 4, static_cast<sqlite3_int64>(*row.position->sub));
      sqlite3_bind_int64(s.get(), 5, row.position->user_sub);
      sqlite3_bind_int64(s.get(), 6, row.position->user_total);
    } else {
      sqlite3_bind_int64(s.get(), 5, 0);
      sqlite3_bind_int64(s.get(), 6, 0);
    }
    sqlite3_bind_int64(s.get(), 7, static_cast<sqlite3_int64>(row.generation));
    sqlite3_bind_int(s.get(), 8, row.ended ? 1 : 0);
    if (sqlite3_step(s.get()) != SQLITE_DONE)
      fail("cannot write");
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<std::pair<shard_id, stored_checkpoint>> sqlite_checkpoint_store::rows() {
  std::vector<std::pair<shard_id, stored_checkpoint>> result;
  std::vector<shard_id> ids;
  {
    statement s{db_, "SELECT shard FROM checkpoints WHERE stream = ?1 ORDER BY shard"};
    if (!s)
      fail("cannot read");
    bind_text(s.get(), 1, stream_);
    while (sqlite3_step(s.get()) == SQLITE_ROW)
      ids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
  }
  for (auto& id : ids)
    result.emplace_back(id, read_row(id));
  return result;
}

} // namespace shardflow
