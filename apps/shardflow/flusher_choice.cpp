#include "apps/shardflow/flusher_choice.hpp"

#include <filesystem>
#include <memory>
#include <system_error>

#include <fmt/format.h>
#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/guarded.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/null_flusher.hpp>

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
  try {
    cfg = postgres::prepare_table(cfg);
  } catch (const error& e) {
    if (e.code() == errc::bad_input)
      usage(e.what()); // a bad connection string or table name: the command line is wrong
    throw;
  }
  const auto threads = settings.io_threads > 0 ? settings.io_threads : io_pool_config{}.threads;
  return postgres::postgres_flusher_factory(cfg,
                                            std::make_shared<io_pool>(io_pool_config{threads}));
}

} // namespace

flusher_factory make_flusher_factory(const flusher_spec& spec, const flusher_settings& settings) {
  if (spec.name == "null")
    return null_flusher::factory(settings.batch_records);
  if (spec.name == "stdout")
    return stdout_flusher::factory(settings.batch_records);
  if (spec.name == "postgres")
    return postgres_factory(spec, settings);
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
