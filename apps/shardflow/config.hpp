// apps/shardflow/config.hpp - the command's TOML config file (--config FILE), read strictly, and
// its environment variables (SHARDFLOW_BATCH_SIZE for --batch-size, ...).
//
// The file holds the top-level options as top-level keys and each subcommand's options in a table
// named after it: [run] for run, [mld-server], [mld.properties]. Keys are the long option names
// without the dashes; a flag takes true or false, a list option an array, a number option an
// integer, any other option a string (or an integer: `flush-interval = 5` is "5", five seconds).
// Anything else is an error naming the file, the line and the key, exit 2: a key no option has, a
// table no subcommand has, a value of the wrong type, a TOML syntax error. Positional arguments
// (the stream directory) are not options and cannot be set in the file.
//
// `strict_toml_config` is CLI11's config reader for the app (App::config_formatter). It checks the
// whole file, then hands CLI11 the values of the top level and of the subcommands given on the
// command line. Precedence: a flag on the command line, then the environment, then the file, then
// the default: CLI11 takes a file's value only for an option the command line did not set, and this
// reader leaves out the values of options whose variable is set in the environment, which CLI11
// reads after the file.
//
// `name_env_vars` gives every named option of an app its variable: SHARDFLOW_ and the long name in
// upper case, dashes as underscores; an option that means different things to different commands
// (--shards, --checkpoint-interval, --listen, --records, --stream-name) has the command's path in
// it too (SHARDFLOW_RUN_SHARDS, SHARDFLOW_MLD_CHECKPOINT_INTERVAL, SHARDFLOW_KAFKA_RUN_...), and
// its bare variable is not read (a warning says so when it is set). main.cpp calls it for the top level at once and for a
// subcommand when the command line enters it, so the variables of commands not run are not read.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace shardflow::cli {

/// Whether the option `long_name` means different things to different commands, so that its
/// environment variable names the command.
bool named_per_command(const std::string& long_name);

/// Returns the environment variable of the option named `long_name` of `command` (its path below
/// the program, "run", "kafka run"; empty: the top level): "batch-size" -> "SHARDFLOW_BATCH_SIZE",
/// "shards" of "run" -> "SHARDFLOW_RUN_SHARDS".
std::string env_var_of(const std::string& long_name, const std::string& command = {});

/// Sets the environment variable of each named option of `app` (not of its subcommands), except
/// --help and --config.
void name_env_vars(CLI::App& app);

/// Reads the TOML text `in` of file `file` for `app` (see the file comment); returns the items for
/// CLI11, or throws CLI::ConfigError whose message names the file, line and key. Adds to `origins`
/// (when given) where each item's value is: "--batch-size" -> "FILE:LINE".
std::vector<CLI::ConfigItem>
read_toml_config(const CLI::App& app, std::istream& in, const std::string& file,
                 std::map<std::string, std::string>* origins = nullptr);

/// CLI11's config reader for `app`: `read_toml_config` of the file given to --config.
class strict_toml_config final : public CLI::Config {
public:
  explicit strict_toml_config(const CLI::App& app) : app_(&app) {
  }

  /// Not supported (shardflow writes no config files): returns an empty string.
  std::string to_config(const CLI::App*, bool, bool, std::string) const override;

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override;

  /// Returns CLI11's `message` about an option's value ("--batch-size: Value 0 not in range ..."),
  /// after the file and line of the value when it came from the file.
  std::string located(const std::string& message) const;

private:
  const CLI::App* app_;
  mutable std::map<std::string, std::string> origins_; // filled while CLI11 reads the file
};

} // namespace shardflow::cli
