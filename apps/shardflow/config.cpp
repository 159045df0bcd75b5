#include "apps/shardflow/config.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <cstdlib>
#include <istream>
#include <map>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/options.hpp"

namespace shardflow::cli {

namespace {

// What a config value of an option must be.
// `optional_text`: an option whose value may be left out (`--json [FILE]`): true in a file means
// the bare option, false leaves it unset, a string is its value.
enum class value_kind { flag, optional_text, list, integer, unsigned_integer, number, text };

// Where a key of the file is: its file and line, and the subcommands' table it is in.
struct key_place {
  const std::string& file;
  std::size_t line;
  std::string section; // "" for the top level, else "run", "mld.properties"
  std::string key;

  std::string where() const {
    return section.empty() ? fmt::format("\"{}\" at the top level", key)
                           : fmt::format("\"{}\" in [{}]", key, section);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw CLI::ConfigError(fmt::format("{}:{}: {} {}", file, line, where(), what));
  }
};

bool configurable_option(const CLI::App& app, const CLI::Option* op) {
  return op->nonpositional() && op != app.get_help_ptr() && op != app.get_help_all_ptr()
         && op != app.get_config_ptr() && op != app.get_version_ptr();
}

const CLI::Option* option_named(const CLI::App& app, const std::string& key) {
  for (const auto* op : app.get_options())
    if (configurable_option(app, op) && op->check_lname(key))
      return op;
  return nullptr;
}

// The long names of `app`'s options and the names of its subcommands: what a key could have meant.
std::vector<std::string> names_in(const CLI::App& app) {
  std::vector<std::string> out;
  for (const auto* op : app.get_options())
    if (configurable_option(app, op))
      for (const auto& name : op->get_lnames())
        out.push_back(name);
  for (const auto* sub : app.get_subcommands({}))
    out.push_back(sub->get_name());
  return out;
}

value_kind kind_of(const CLI::Option& op) {
  if (op.get_expected_min() == 0)
    return op.get_expected_max() == 0 ? value_kind::flag : value_kind::optional_text;
  if (op.get_items_expected_max() > 1)
    return value_kind::list;
  const auto type = op.get_type_name();
  const auto base = type.substr(0, type.find(':'));
  if (base == "INT")
    return value_kind::integer;
  if (base == "UINT")
    return value_kind::unsigned_integer;
  if (base == "FLOAT")
    return value_kind::number;
  return value_kind::text;
}

const char* toml_type_of(const toml::node& v) {
  switch (v.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

// The text of one scalar value for an option of `kind` (not flag, not list).
std::string scalar_of(const key_place& at, value_kind kind, const toml::node& v) {
  if (kind == value_kind::text && v.is_string())
    return v.as_string()->get();
  if (kind == value_kind::number && v.is_floating_point())
    return fmt::format("{}", v.as_floating_point()->get());
  if (v.is_integer()) {
    const auto n = v.as_integer()->get();
    if (kind == value_kind::unsigned_integer && n < 0)
      at.fail(fmt::format("must be an integer of 0 or more, not {}", n));
    return std::to_string(n);
  }
  const char* wanted = kind == value_kind::text     ? "a string"
                       : kind == value_kind::number ? "a number"
                                                    : "an integer";
  at.fail(fmt::format("must be {}, not {}", wanted, toml_type_of(v)));
}

std::vector<std::string> inputs_of(const key_place& at, const CLI::Option& op,
                                   const toml::node& v) {
  const auto kind = kind_of(op);
  if (kind == value_kind::flag) {
    if (!v.is_boolean())
      at.fail(fmt::format("is a flag: it must be true or false, not {}", toml_type_of(v)));
    return {v.as_boolean()->get() ? "true" : "false"};
  }
  if (kind == value_kind::optional_text) {
    if (v.is_boolean()) // true: what the bare option means; false: not given (no inputs)
      return v.as_boolean()->get() ? std::vector<std::string>{op.get_default_str()}
                                   : std::vector<std::string>{};
    if (!v.is_string())
      at.fail(fmt::format("must be true, false or a string, not {}", toml_type_of(v)));
    return {v.as_string()->get()};
  }
  if (kind != value_kind::list)
    return {scalar_of(at, kind, v)};
  std::vector<std::string> out;
  if (!v.is_array())
    return {scalar_of(at, value_kind::text, v)};
  for (const auto& x : *v.as_array())
    out.push_back(scalar_of(at, value_kind::text, x));
  return out;
}

// Whether the environment sets `op` (it then takes precedence over the file; CLI11 ignores an
// empty variable, and so does this).
bool set_in_environment(const CLI::Option& op) {
  const auto name = op.get_envname();
  if (name.empty())
    return false;
  const char* value = std::getenv(name.c_str());
  return value != nullptr && *value != '\0';
}

struct reader {
  const std::string& file;
  std::vector<CLI::ConfigItem> items;
  std::map<std::string, std::string> origins; // "--batch-size" -> "FILE:LINE"

  // Reads the keys of `table`, the part of the file for `app` (whose values are wanted when the
  // command line runs `app`).
  void read(const CLI::App& app, const toml::table& table, const std::vector<std::string>& parents,
            bool wanted) {
    for (const auto& [k, v] : table) {
      const std::string key{k.str()};
      key_place at{file, k.source().begin.line, fmt::format("{}", fmt::join(parents, ".")), key};
      if (const auto* op = option_named(app, key)) {
        auto inputs = inputs_of(at, *op, v);
        // CLI11 takes a file's value only for an option the command line did not set.
        const bool unset = inputs.empty() && kind_of(*op) == value_kind::optional_text; // false
        if (wanted && !unset && op->count() == 0 && !set_in_environment(*op)) {
          items.push_back(CLI::ConfigItem{parents, key, std::move(inputs)});
          origins["--" + key] = fmt::format("{}:{}", file, at.line);
        }
        continue;
      }
      const auto* sub = find_subcommand(app, key);
      if (sub == nullptr || !v.is_table())
        at.fail(why_unknown(app, key, sub != nullptr, at.section));
      auto path = parents;
      path.push_back(key);
      read(*sub, *v.as_table(), path, wanted && sub->parsed());
    }
  }

  // Why `key` is not a key of `app`'s table, with the name it could have meant.
  static std::string why_unknown(const CLI::App& app, const std::string& key, bool subcommand,
                                 const std::string& section) {
    if (subcommand)
      return fmt::format("is a subcommand: write its options in [{}{}]",
                         section.empty() ? "" : section + ".", key);
    for (const auto* sub : app.get_subcommands({}))
      if (option_named(*sub, key) != nullptr)
        return fmt::format(
          "is not an option of this command; it is one of {0}: write it in [{1}{0}]",
          sub->get_name(), section.empty() ? "" : section + ".");
    const auto guess = closest(key, names_in(app));
    return guess.empty()
             ? std::string{"is not an option of this command"}
             : fmt::format("is not an option of this command (did you mean {}?)", guess);
  }

  static const CLI::App* find_subcommand(const CLI::App& app, const std::string& name) {
    for (const auto* sub : app.get_subcommands({}))
      if (sub->get_name() == name)
        return sub;
    return nullptr;
  }
};

} // namespace

bool named_per_command(const std::string& long_name) {
  // Each means different things to different commands: --shards is a count for generate and put, a
  // list for run; --checkpoint-interval 1s for run, 10s for mld; --listen the server's address for
  // mld-server, the daemon's for mld properties; --records generate's total, kpl-agg's per
  // aggregate; --stream-name run's checkpoint key, the postgres rows' column.
  static const char* const names[] = {"shards", "checkpoint-interval", "listen", "records",
                                      "stream-name"};
  return std::find(std::begin(names), std::end(names), long_name) != std::end(names);
}

std::string env_var_of(const std::string& long_name, const std::string& command) {
  std::string out = "SHARDFLOW_";
  const auto name = named_per_command(long_name) && !command.empty() ? command + "_" + long_name
                                                                     : long_name;
  for (const char c : name)
    out += c == '-' || c == ' '
             ? '_'
             : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

void name_env_vars(CLI::App& app) {
  // The command's path below the program: "run", "kafka run", "mld properties".
  std::string command;
  for (const auto* a = &app; a->get_parent() != nullptr; a = a->get_parent())
    command = command.empty() ? a->get_name() : a->get_name() + " " + command;
  for (auto* op : app.get_options()) {
    if (!configurable_option(app, op) || op->get_lnames().empty())
      continue;
    const auto& long_name = op->get_lnames().front();
    op->envname(env_var_of(long_name, command));
    // A bare variable left over from another command must not narrow or change this one silently.
    const auto bare = env_var_of(long_name);
    if (bare != op->get_envname() && std::getenv(bare.c_str()) != nullptr)
      say(log_level::warning, "{} is not read by `{}`: --{} means different things to different "
                           "commands, so its variable here is {}",
          bare, command, long_name, op->get_envname());
  }
}

std::vector<CLI::ConfigItem> read_toml_config(const CLI::App& app, std::istream& in,
                                              const std::string& file,
                                              std::map<std::string, std::string>* origins) {
  toml::table table;
  try {
    table = toml::parse(in, file);
  } catch (const toml::parse_error& e) {
    throw CLI::ConfigError(fmt::format("{}:{}:{}: not valid TOML: {}", file, e.source().begin.line,
                                       e.source().begin.column, e.description()));
  }
  reader r{file, {}, {}};
  r.read(app, table, {}, true);
  if (origins != nullptr)
    origins->insert(r.origins.begin(), r.origins.end());
  return std::move(r.items);
}

std::string strict_toml_config::to_config(const CLI::App*, bool, bool, std::string) const {
  return {};
}

std::vector<CLI::ConfigItem> strict_toml_config::from_config(std::istream& in) const {
  const auto* op = app_->get_config_ptr();
  const auto file = op != nullptr && op->count() > 0 ? op->as<std::string>()
                                                     : std::string{"config"};
  return read_toml_config(*app_, in, file, &origins_);
}

std::string strict_toml_config::located(const std::string& message) const {
  const auto end = message.find(':');
  if (end == std::string::npos)
    return message;
  const auto i = origins_.find(message.substr(0, end));
  return i == origins_.end() ? message : i->second + ": " + message;
}

} // namespace shardflow::cli
