// postgres/postgres_flusher.hpp - writes each shard's records into a PostgreSQL table, in
// transactions of one or more whole batches, tokens back once the transaction has committed.
//
// The columns written are `columns` (copy_rows.hpp: by default stream, shard, sequence,
// sub_sequence, partition_key, arrival, data jsonb for JSON payloads and data_raw bytea for the
// others; --pg-columns picks and renames them, --pg-data makes data bytea or text); other columns
// of the table keep their defaults. `prepare_table` runs once before any shard starts: it checks
// the choices against each other (errc::bad_input), connects, creates the table (with primary key
// (stream, shard, sequence, sub_sequence) when those four are among the columns) when
// `create_table` is set, and otherwise checks that the table exists and has every column with its
// type; every problem is a clear error there, before the first record. It then picks the mode:
//
//   effectively_once (when the table has a unique key on exactly the four key columns):
//       first COPY table FROM STDIN, as in plain mode: a batch none of whose rows is in the table
//       (every batch but a replayed one) lands in one pass. When a row is already there the
//       COPY fails with unique_violation (23505) and adds nothing; then, and for every batch
//       written again after a failure (a lost COMMIT answer among them):
//       BEGIN; COPY stage FROM STDIN; INSERT INTO table SELECT ... FROM stage
//       ON CONFLICT (stream, shard, sequence, sub_sequence) DO NOTHING; COMMIT
//     (`stage` is a temporary table per connection, ON COMMIT DELETE ROWS.) A replayed record finds
//     its row and adds nothing, so a crash and a replay leave every record in the table once.
//     It needs the TEMPORARY privilege on the database, which `prepare_table` checks.
//   plain (no such key): COPY table FROM STDIN (one statement, one transaction). A replay after a
//     crash adds the replayed rows again (at-least-once); a replayed row that another unique
//     index of the table refuses fails its shard (`prepare_table` warns of each such index).
// `prepare_table` logs the mode it runs in (info) to `log`.
//
// COPY reads text rows by default (`format`; binary on request). For JSON payloads the two are as
// fast (the server parses jsonb from either; 200,000 rows, 3 alternating pairs on 2 loaded cores:
// text 2.94, 2.12, 2.16 s, binary 3.24, 2.59, 2.19 s); binary sends bytea payloads without their
// hex doubling.
//
// Writing: a `postgres_sink` per shard (flushers/io_pool.hpp: rows formatted on the shard's thread,
// written on an I/O pool thread) hands each batch to the run's `group_commit` (group_commit.hpp):
// the batches of shards that wait at the same time share one transaction (one WAL flush), on one of
// `group.writers` connections from a shared set. A transient failure (connection lost or refused,
// server shutting down or starting, see pg_connection.hpp) drops the connection and writes the
// whole batch again, alone, on a new one, with backoff from `backoff_min` doubling to
// `backoff_max`, for at most `retry_for`: a batch whose COMMIT got no answer is written again too
// (in effectively-once mode that adds nothing; in plain mode it may add the batch twice). A batch
// whose shared transaction failed is written again alone at once, so a row the table refuses fails
// only its own shard. Any other failure (authentication, permissions, a missing table or column, a
// row the table refuses), or retrying for longer than `retry_for`, throws errc::io_failed with the
// server's message: the shard fails and its restart replays from the checkpoint.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <shardflow/core/flusher.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/flushers/io_pool.hpp>
#include <shardflow/postgres/copy_rows.hpp>
#include <shardflow/postgres/group_commit.hpp>

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
  /// The columns written, in order (copy_rows.hpp); any other column keeps its default.
  std::vector<column> columns = default_columns();
  /// The type of the `data` column.
  data_type data = data_type::jsonb;
  /// How COPY reads the rows (text: as fast as binary for JSON payloads, see the file comment).
  copy_format format = copy_format::text;
  /// The value of the `stream` column.
  std::string stream = "stream";
  /// Records per batch (one transaction each).
  std::size_t batch_records = 1000;
  /// Create the table (with its key) if it does not exist.
  bool create_table = false;
  /// How to write; `prepare_table` turns `automatic` into the mode it picked.
  write_mode mode = write_mode::automatic;
  /// Transactions written at once and batches (of any shards) per transaction.
  group_commit_config group;
  /// Sealed batches a shard may have waiting or being written (more than the pool's default: a
  /// shard whose batches wait for a commit blocks its actor thread only beyond this many).
  std::size_t max_in_flight = 8;
  /// Threads of the I/O pool `postgres_flusher_factory` is given (flusher_choice makes it): each
  /// waits for the commit of its batch's group, so they bound how many batches a group takes.
  std::size_t pool_threads = 64;
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
  /// `group` writes the batches of concurrent shards in one transaction (group_commit.hpp).
  postgres_sink(shard_id id, const postgres_flusher_config& cfg,
                std::shared_ptr<pg_connections> conns, std::shared_ptr<group_commit> group);

  void append(std::string& batch, const stream_record& x) override;
  void write(const std::string& batch, std::size_t records) override;

private:
  void retrying(const pg_failure& e, std::size_t records, std::chrono::milliseconds backoff);

  shard_id id_;
  const postgres_flusher_config cfg_;
  copy_rows rows_;
  std::shared_ptr<pg_connections> conns_;
  std::shared_ptr<group_commit> group_;
};

/// Writes `batches` (COPY rows of `cfg`'s format) in one transaction on a connection of `conns`
/// (one that fails is dropped): by COPY into the table, or, when `staged` in effectively-once
/// mode, through the staging table and ON CONFLICT DO NOTHING. @throws pg_failure
void write_rows(pg_connections& conns, const postgres_flusher_config& cfg,
                const std::vector<const std::string*>& batches, bool staged);

/// Returns a factory of pooled flushers writing to PostgreSQL on `pool`'s threads. `cfg` must come
/// from `prepare_table`.
flusher_factory postgres_flusher_factory(postgres_flusher_config cfg,
                                         std::shared_ptr<io_pool> pool);

} // namespace shardflow::postgres
