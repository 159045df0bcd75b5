#include "apps/shardflow/cli_log.hpp"

#include <mutex>

#include <CLI/CLI.hpp>

namespace shardflow::cli {

namespace {

std::mutex settings_mutex;

cli_log_config& settings() {
  static cli_log_config cfg;
  return cfg;
}

log_level level_of(const std::string& text) {
  if (text == "debug")
    return log_level::debug;
  if (text == "warning")
    return log_level::warning;
  if (text == "error")
    return log_level::error;
  return log_level::info;
}

} // namespace

void set_cli_log(cli_log_config cfg) {
  std::lock_guard<std::mutex> guard{settings_mutex};
  settings() = std::move(cfg);
}

void set_cli_program(std::string program) {
  std::lock_guard<std::mutex> guard{settings_mutex};
  settings().program = std::move(program);
}

cli_log_config cli_log_settings() {
  std::lock_guard<std::mutex> guard{settings_mutex};
  return settings();
}

void add_log_options(CLI::App& app) {
  app
    .add_option_function<std::string>(
      "--log-level",
      [](const std::string& x) {
        auto cfg = cli_log_settings();
        cfg.level = level_of(x);
        set_cli_log(std::move(cfg));
      },
      "log lines at this level and above: debug | info | warning | error (default: info)")
    ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  app
    .add_option_function<std::string>(
      "--log-format",
      [](const std::string& x) {
        auto cfg = cli_log_settings();
        cfg.format = x == "json" ? log_format::json : log_format::text;
        set_cli_log(std::move(cfg));
      },
      "text (TIME LEVEL PROGRAM: MESSAGE) or json (one object a line: time, level, shard, "
      "message), on standard error (default: text)")
    ->check(CLI::IsMember({"text", "json"}));
}

log_sink cli_log() {
  const auto cfg = cli_log_settings();
  auto sink = cfg.format == log_format::json ? stderr_json_log() : stderr_log(cfg.program);
  return at_least(cfg.level, std::move(sink));
}

void say(log_level level, std::string_view message) {
  cli_log()(level, message);
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  if (n == 1)
    return fmt::format("1 {}", one);
  if (many.empty())
    return fmt::format("{} {}s", n, one);
  return fmt::format("{} {}", n, many);
}

} // namespace shardflow::cli
