// stores/sqlite_checkpoint_store.hpp - checkpoints in an embedded SQLite database.
//
// One row per stream and shard in the table `checkpoints` (stream, shard, sequence, sub, user_sub,
// user_total, generation, ended, updated_at). The database runs in WAL mode with synchronous=FULL,
// and every load and save is one IMMEDIATE transaction, so a save that returned is on disk and two
// processes sharing the file serialise. `load` increments the shard's generation (fencing older
// incarnations, also those of an earlier process); `save` applies the rules of every store
// (core/checkpoint_store.hpp). Blocking: serve it from a detached checkpoint sink.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <shardflow/core/checkpoint_store.hpp>

struct sqlite3;

namespace shardflow {

/// A checkpoint store in a SQLite database file.
class sqlite_checkpoint_store final : public checkpoint_store {
public:
  /// Opens (or creates, with the directories it is in) the database at `path` and keeps the checkpoints of stream `stream` there.
  /// A database another process holds locked is waited for up to `busy_timeout` per statement.
  /// @throws shardflow::error (errc::checkpoint_failed) naming the file and the reason (locked, not
  ///         a database, read-only, full disk, ...).
  sqlite_checkpoint_store(std::filesystem::path path, std::string stream,
                          std::chrono::milliseconds busy_timeout = std::chrono::seconds{10});
  ~sqlite_checkpoint_store() override;

  sqlite_checkpoint_store(const sqlite_checkpoint_store&) = delete;
  sqlite_checkpoint_store& operator=(const sqlite_checkpoint_store&) = delete;

  stored_checkpoint load(const shard_id& id) override;
  void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) override;

  /// Returns every row of the stream, by shard, without fencing anything.
  std::vector<std::pair<shard_id, stored_checkpoint>> rows();

private:
  void make_parent_directory();
  stored_checkpoint read_row(const shard_id& id);
  void exec(const char* sql);
  [[noreturn]] void fail(const std::string& what);

  std::filesystem::path path_;
  std::string stream_;
  std::chrono::milliseconds busy_timeout_;
  sqlite3* db_ = nullptr;
};

} // namespace shardflow
