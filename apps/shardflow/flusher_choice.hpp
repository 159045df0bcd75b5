// apps/shardflow/flusher_choice.hpp - the one place where a command turns --flusher into a flusher
// factory (`run`, `mld`, `mld-server` and `kafka run` share it), and the flusher options that go
// with it.
//
// `null` and `stdout` take the batch size; `file:DIR` takes the batch size and the roll limits. The
// file flusher's directory is created and checked for writing here, before any shard starts, so an
// unusable output fails once with a clear message (errc::io_failed) rather than in every shard.
// With `io_threads` set, the file flusher writes on one I/O pool shared by the command's shards
// (flushers/io_pool.hpp). `postgres:CONNINFO` checks (or creates) its table here, once: a server that
// cannot be reached or refuses us, a missing table or column is errc::io_failed before any shard
// starts; a connection string libpq cannot parse is a usage error. `kafka:BROKERS/TOPIC` makes one
// producer with `kafka_properties` (-X) here, so a property librdkafka refuses fails before any
// shard starts (errc::bad_input).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "apps/shardflow/options.hpp"
#include <shardflow/core/flusher.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/postgres/postgres_flusher.hpp>

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// What the flushers of a command are made with; defaults are the file flusher's.
struct flusher_settings {
  /// Records per batch (the flusher's capacity).
  std::size_t batch_records = file_flusher_config{}.batch_records;
  /// file: a new file after this many bytes (0: never).
  std::uint64_t roll_bytes = file_flusher_config{}.roll_bytes;
  /// file: a new file after this long (0: never).
  std::chrono::seconds roll_age = file_flusher_config{}.roll_age;
  /// file: threads of one I/O pool that write and sync the batches of every shard, which then need
  /// no thread of their own (0: each flusher writes on its shard's thread, e.g. detached shards).
  std::size_t io_threads = 0;
  /// postgres: the target table, whether to create it, how to write (auto, plain,
  /// effectively-once), the columns (--pg-columns), the data column's type (jsonb, bytea, text),
  /// COPY's format (binary, text), and the stream column's value.
  std::string postgres_table = postgres::postgres_flusher_config{}.table;
  bool postgres_create_table = false;
  std::string postgres_mode = "auto";
  /// Empty: every role, without data_raw unless `postgres_data` is jsonb.
  std::string postgres_columns;
  std::string postgres_data = "jsonb";
  std::string postgres_copy = "text";
  std::string stream = "stream";
  /// kafka: librdkafka producer properties (`-X`).
  std::map<std::string, std::string> kafka_properties;
};

/// The options about flushers that every command writing through them offers besides --flusher
/// (`run`, `mld`, `mld-server`): file rolling and the PostgreSQL table, mode, columns, data type
/// and COPY format, as given.
struct flusher_options {
  std::string roll_size = "0";
  std::string roll_age = "0";
  std::string pg_table = postgres::postgres_flusher_config{}.table;
  bool pg_create_table = false;
  std::string pg_mode = "auto";
  std::string pg_columns; // empty: the default for --pg-data
  std::string pg_data = "jsonb";
  std::string pg_copy = "text";
};

/// Registers --roll-size, --roll-age, --pg-table, --pg-create-table, --pg-mode, --pg-columns,
/// --pg-data and --pg-copy on `cmd`.
void add_flusher_options(CLI::App* cmd, flusher_options* opts);

/// Sets the roll limits and the PostgreSQL fields of `settings` from `opts`.
/// @throws CLI::ValidationError (a usage error) naming an option whose value is not valid.
void apply_flusher_options(const flusher_options& opts, flusher_settings& settings);

/// Returns the factory for `spec` (a parsed --flusher).
/// @throws shardflow::error (errc::io_failed) when the file flusher's directory cannot be created
///         or written, or PostgreSQL or its table cannot be used.
flusher_factory make_flusher_factory(const flusher_spec& spec, const flusher_settings& settings);

} // namespace shardflow::cli
