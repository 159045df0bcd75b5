// apps/shardflow/main.cpp - the `shardflow` command: parses the command line and runs a subcommand.
//
// Exit codes: apps/shardflow/exit_codes.hpp (printed by --help).
#include <CLI/CLI.hpp>

#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/mld_command.hpp"
#include "apps/shardflow/run_command.hpp"
#include "apps/shardflow/stream_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"shardflow - process sharded record streams with flushers, checkpoints and "
               "supervised shard actors"};
  app.require_subcommand(1);
  app.footer(shardflow::cli::exit_code_help);
  app.set_config("--config", "", "read options from a TOML file ([run] section for run options)");
  int exit_code = shardflow::cli::exit_ok;
  shardflow::cli::add_put_command(app, exit_code);
  shardflow::cli::add_generate_command(app, exit_code);
  shardflow::cli::add_run_command(app, exit_code);
  shardflow::cli::add_mld_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const auto rc = app.exit(e);
    return rc == 0 ? shardflow::cli::exit_ok : shardflow::cli::exit_usage;
  }
  return exit_code;
}
