// apps/shardflow/main.cpp - the `shardflow` command: parses the command line and runs a subcommand.
//
// Exit codes: 0 success; 1 the job failed (the message says why); 2 bad command line.
#include <CLI/CLI.hpp>

#include "apps/shardflow/demo_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"shardflow - process sharded record streams with flushers, checkpoints and "
               "supervised shard actors"};
  app.require_subcommand(1);
  int exit_code = 0;
  shardflow::cli::add_demo_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const auto rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
