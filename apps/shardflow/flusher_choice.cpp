#include "apps/shardflow/flusher_choice.hpp"

#include <filesystem>
#include <memory>
#include <system_error>

#include <fmt/format.h>
#include <unistd.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/null_flusher.hpp>

namespace fs = std::filesystem;

namespace shardflow::cli {

flusher_factory make_flusher_factory(const flusher_spec& spec, const flusher_settings& settings) {
  if (spec.name == "null")
    return null_flusher::factory(settings.batch_records);
  if (spec.name == "stdout")
    return stdout_flusher::factory(settings.batch_records);
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
