// apps/shardflow/mld_command.hpp - `shardflow mld` (the KCL MultiLangDaemon worker over stdio),
// `shardflow mld properties` and `shardflow kpl-agg`.
#pragma once

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// Registers `mld` (with its `properties` subcommand) and `kpl-agg` on `app`.
void add_mld_commands(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
