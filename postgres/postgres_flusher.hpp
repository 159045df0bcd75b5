// postgres/postgres_flusher.hpp - writes each shard's records into a PostgreSQL table, one
// transaction per batch, tokens back once it has committed.
//
// The table has these columns (other columns may exist and are left to their defaults):
//
//     stream text, shard text, sequence numeric, sub_sequence bigint    -- the record's key
//     partition_key text, arrival timestamptz (NULL when unknown),
//     data jsonb (the payload when it parses as JSON, else NULL), data_raw bytea (else NULL)
//
// `sub_sequence` is the record's place in its aggregate (user_sub) for a KPL user record, the
// daemon's sub-sequence number otherwise (0 when absent). `prepare_table` runs once before any shard
// starts: it connects, creates the table with primary key (stream, shard, sequence, sub_sequence)
// when `create_table` is set, and otherwise checks that the table and its columns exist; every
// problem is a clear error there, before the first record. It then picks the mode:
//
//   effectively_once (when the table has a unique key on exactly the four key columns):
//       BEGIN; COPY stage FROM STDIN; INSERT INTO table SELECT ... FROM stage
//       ON CONFLICT (stream, shard, sequence, sub_sequence) DO NOTHING; COMMIT
//     (`stage` is a temporary table per connection, ON COMMIT DELETE ROWS.) A replayed record finds
//     its row and adds nothing, so a crash and a replay leave every record in the table once.
//   plain (no such key): COPY table FROM STDIN (one statement, one transaction). A replay after a
//     crash adds the replayed rows again (at-least-once).
//
// Writing: a `postgres_sink` per shard (flushers/io_pool.hpp: rows formatted in COPY text format on
// the shard's thread, written on an I/O pool thread) borrows a connection from a shared set for each
// batch. A transient failure (connection lost or refused, server shutting down or starting, see
// pg_connection.hpp) drops the connection and writes the whole batch again on a new one, with backoff
// from `backoff_min` doubling to `backoff_max`, for at most `retry_for`: a batch whose COMMIT got no
// answer is written again too (in effectively-once mode that adds nothing; in plain mode it may add
// the batch twice). Any other failure (authentication, permissions, a missing table or column, a
// row the table refuses), or retrying for longer than `retry_for`, throws errc::io_failed with the
// server's message: the shard fails and its restart replays from the checkpoint.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <shardflow/core/flusher.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/flushers/io_pool.hpp>

namespace shardflow::postgres {

class pg_connections;
class pg_failure;

/// How batches land in the table.
enum class write_mode : std::uint8_t {
  /// effectively_once when the table has the key, else plain.
  automatic,
  /// COPY straight into the table.
  plain,
  /// COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING (needs the key).
  effectively_once,
};

/// Returns "auto", "plain" or "effectively-once".
const char* to_string(write_mode mode) noexcept;

/// Options of the PostgreSQL flusher.
struct postgres_flusher_config {
  /// A libpq connection string or URI.
  std::string conninfo;
  /// The target table, `name` or `schema.name` (letters, digits, '_').
  std::string table = "shardflow_records";
  /// The value of the `stream` column.
  std::string stream = "stream";
  /// Records per batch (one transaction each).
  std::size_t batch_records = 1000;
  /// Create the table (with its key) if it does not exist.
  bool create_table = false;
  /// How to write; `prepare_table` turns `automatic` into the mode it picked.
  write_mode mode = write_mode::automatic;
  /// Sealed batches a shard may have waiting or being written.
  std::size_t max_in_flight = pooled_flusher_config{}.max_in_flight;
  /// Backoff between attempts of one batch after a transient failure.
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{2000};
  /// Give up on a batch (errc::io_failed) after retrying it this long.
  std::chrono::milliseconds retry_for{60000};
  /// Where the retries are told (a warning each, `SHARD: postgres: ...`); none when empty.
  log_sink log;
};

/// Checks (or creates) the table and picks the write mode; returns `cfg` with `mode` decided.
/// @throws shardflow::error: errc::bad_input for a conninfo libpq cannot parse or a bad table name;
///         errc::io_failed when the server cannot be reached or refuses us, the table is missing
///         (without `create_table`), lacks a column, or lacks the key effectively_once needs.
postgres_flusher_config prepare_table(postgres_flusher_config cfg);

/// The writing half of one shard's PostgreSQL flusher; see the file comment.
class postgres_sink final : public batch_sink {
public:
  /// `cfg` must come from `prepare_table`; `conns` is shared by every shard of the run.
  postgres_sink(shard_id id, const postgres_flusher_config& cfg,
                std::shared_ptr<pg_connections> conns);

  void append(std::string& batch, const stream_record& x) override;
  void write(const std::string& batch, std::size_t records) override;

private:
  void retrying(const pg_failure& e, std::size_t records, std::chrono::milliseconds backoff);

  void write_once(const std::string& batch);

  shard_id id_;
  std::string prefix_; // the stream and shard columns, escaped, each followed by a tab
  const postgres_flusher_config cfg_;
  std::shared_ptr<pg_connections> conns_;
};

/// Returns a factory of pooled flushers writing to PostgreSQL on `pool`'s threads. `cfg` must come
/// from `prepare_table`.
flusher_factory postgres_flusher_factory(postgres_flusher_config cfg,
                                         std::shared_ptr<io_pool> pool);

/// Appends `text` to `out` escaped for COPY's text format (backslash, tab, newline, CR).
void append_copy_text(std::string& out, std::string_view text);

/// Appends the COPY text row of record `x` (columns as in the file comment, after `prefix`, the
/// escaped stream and shard columns with their tabs) to `out`.
void append_copy_row(std::string& out, const std::string& prefix, const stream_record& x);

} // namespace shardflow::postgres
