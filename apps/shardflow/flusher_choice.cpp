#include "apps/shardflow/flusher_choice.hpp"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/guarded.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/null_flusher.hpp>
#include <shardflow/kafka/kafka_flusher.hpp>

namespace fs = std::filesystem;

namespace shardflow::cli {

namespace {

flusher_factory postgres_factory(const flusher_spec& spec, const flusher_settings& settings) {
  postgres::postgres_flusher_config cfg;
  cfg.conninfo = spec.argument;
  cfg.table = settings.postgres_table;
  cfg.stream = settings.stream;
  cfg.batch_records = settings.batch_records;
  cfg.create_table = settings.postgres_create_table;
  cfg.log = cli_log();
  cfg.mode = settings.postgres_mode == "plain"              ? postgres::write_mode::plain
             : settings.postgres_mode == "effectively-once" ? postgres::write_mode::effectively_once
                                                            : postgres::write_mode::automatic;
  cfg.data = settings.postgres_data == "bytea"  ? postgres::data_type::bytea
             : settings.postgres_data == "text" ? postgres::data_type::text
                                                : postgres::data_type::jsonb;
  cfg.format = settings.postgres_copy == "binary" ? postgres::copy_format::binary
                                                  : postgres::copy_format::text;
  try {
    cfg.columns = settings.postgres_columns.empty()
                    ? postgres::default_columns(cfg.data)
                    : postgres::parse_columns(settings.postgres_columns);
    cfg = postgres::prepare_table(cfg);
  } catch (const error& e) {
    if (e.code() == errc::bad_input)
      usage(e.what()); // a bad connection string or table name: the command line is wrong
    throw;
  }
  // --io-threads: transactions written at once; the pool's threads only wait for their group.
  if (settings.io_threads > 0)
    cfg.group.writers = settings.io_threads;
  return postgres::postgres_flusher_factory(
    cfg, std::make_shared<io_pool>(io_pool_config{cfg.pool_threads}));
}

// kafka:BROKERS/TOPIC (checked by parse_flusher); the producer is made per shard, so a bad -X
// property is checked here, once, by making one.
flusher_factory kafka_factory(const flusher_spec& spec, const flusher_settings& settings) {
  kafka_flusher_config cfg;
  const auto slash = spec.argument.rfind('/');
  cfg.brokers = spec.argument.substr(0, slash);
  cfg.topic = spec.argument.substr(slash + 1);
  cfg.properties = settings.kafka_properties;
  cfg.max_outstanding = std::max<std::size_t>(settings.batch_records, 1);
  cfg.log = cli_log();
  kafka_flusher probe{"--flusher", cfg};
  return kafka_flusher_factory(cfg);
}

} // namespace

void add_flusher_options(CLI::App* cmd, flusher_options* opts) {
  cmd->add_option("--roll-size", opts->roll_size, "file flusher: new file after this many bytes")
    ->capture_default_str();
  add_duration(cmd, "--roll-age", opts->roll_age, "file flusher: new file after this long")
    ->capture_default_str();
  cmd->add_option("--pg-table", opts->pg_table, "postgres flusher: the table ([SCHEMA.]NAME)")
    ->capture_default_str();
  cmd->add_flag("--pg-create-table", opts->pg_create_table,
                "postgres flusher: create the table (with its key) if it does not exist");
  cmd
    ->add_option("--pg-mode", opts->pg_mode,
                 "postgres flusher: effectively-once (staging table, ON CONFLICT DO NOTHING; "
                 "needs the key), plain (COPY), auto (effectively-once when the table has the key)")
    ->check(CLI::IsMember({"auto", "plain", "effectively-once"}))
    ->capture_default_str();
  cmd
    ->add_option("--pg-columns", opts->pg_columns,
                 "postgres flusher: the columns written, in order, as ROLE or ROLE=NAME (roles: "
                 "stream, shard, sequence, sub_sequence, partition_key, arrival, data, data_raw; "
                 "default: all of them, without data_raw under --pg-data bytea or text)");
  cmd
    ->add_option("--pg-data", opts->pg_data,
                 "postgres flusher: the data column's type: jsonb (JSON payloads; the others go "
                 "to data_raw, bytea), bytea or text (every payload)")
    ->check(CLI::IsMember({"jsonb", "bytea", "text"}))
    ->capture_default_str();
  cmd
    ->add_option("--pg-copy", opts->pg_copy, "postgres flusher: COPY's format: text or binary")
    ->check(CLI::IsMember({"text", "binary"}))
    ->capture_default_str();
}

void apply_flusher_options(const flusher_options& opts, flusher_settings& settings) {
  settings.roll_bytes = checked(parse_size("--roll-size", opts.roll_size));
  settings.roll_age = std::chrono::duration_cast<std::chrono::seconds>(
    duration_option("--roll-age", opts.roll_age));
  settings.postgres_table = opts.pg_table;
  settings.postgres_create_table = opts.pg_create_table;
  settings.postgres_mode = opts.pg_mode;
  settings.postgres_columns = opts.pg_columns;
  settings.postgres_data = opts.pg_data;
  settings.postgres_copy = opts.pg_copy;
}

flusher_factory make_flusher_factory(const flusher_spec& spec, const flusher_settings& settings) {
  if (spec.name == "null")
    return null_flusher::factory(settings.batch_records);
  if (spec.name == "stdout")
    return stdout_flusher::factory(settings.batch_records);
  if (spec.name == "postgres")
    return postgres_factory(spec, settings);
  if (spec.name == "kafka")
    return kafka_factory(spec, settings);
  file_flusher_config f;
  f.dir = spec.argument;
  f.batch_records = settings.batch_records;
  f.roll_bytes = settings.roll_bytes;
  f.roll_age = settings.roll_age;
  if (settings.io_threads > 0)
    f.pool = std::make_shared<io_pool>(io_pool_config{settings.io_threads});
  std::error_code ec;
  fs::create_directories(f.dir, ec);
  if (ec || ::access(f.dir.c_str(), W_OK) != 0)
    throw error{errc::io_failed,
                fmt::format("cannot write to the output directory {}{}", f.dir.string(),
                            ec ? ": " + ec.message() : std::string{": permission denied"})};
  return file_flusher::factory(f);
}

} // namespace shardflow::cli
