// apps/shardflow/main.cpp - the `shardflow` command: parses the command line and runs a subcommand.
//
// Options come from the command line (before or after the subcommand for the global ones), the
// environment (SHARDFLOW_BATCH_SIZE for --batch-size), a TOML file (--config FILE) or their
// defaults, in this order of precedence (apps/shardflow/config.hpp). A mistyped subcommand or option
// is a usage error that says which one was meant. Exit codes: apps/shardflow/exit_codes.hpp
// (printed by --help).
#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/config.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/kafka_command.hpp"
#include "apps/shardflow/mld_command.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/run_command.hpp"
#include "apps/shardflow/stream_commands.hpp"

namespace {

using namespace shardflow::cli;

// Names the environment variables of `sub`'s options and the program of its log lines once the
// command line enters `sub` (and so for its subcommands).
void on_entering(CLI::App& sub, const std::string& program) {
  sub.preparse_callback([&sub, program](std::size_t) {
    name_env_vars(sub);
    set_cli_program(program);
  });
  for (auto* child : sub.get_subcommands([](CLI::App*) { return true; }))
    on_entering(*child, program + " " + child->get_name());
}

// The subcommand the command line reached last: the one whose options it was given.
const CLI::App* deepest(const CLI::App& app) {
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty())
    at = at->get_subcommands().front();
  return at;
}

// The long option names `at` accepts (its own and, by fallthrough, its parents').
std::vector<std::string> option_names(const CLI::App* at) {
  std::vector<std::string> out;
  for (; at != nullptr; at = at->get_parent())
    for (const auto* op : at->get_options())
      for (const auto& name : op->get_lnames())
        out.push_back(name);
  return out;
}

// The message of a usage error, with what a mistyped word could have meant.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  const auto rest = app.remaining(true);
  if (rest.empty())
    return e.what();
  const auto* at = deepest(app);
  const auto& word = rest.front();
  if (word.size() > 1 && word[0] == '-') {
    const auto start = word.find_first_not_of('-');
    const auto end = word.find('=');
    const auto name = word.substr(start, end == std::string::npos ? end : end - start);
    const auto guess = closest(name, option_names(at));
    return guess.empty() ? fmt::format("unknown option {}", word)
                         : fmt::format("unknown option {} (did you mean --{}?)", word, guess);
  }
  std::vector<std::string> subs;
  for (const auto* sub : at->get_subcommands({}))
    subs.push_back(sub->get_name());
  if (subs.empty())
    return e.what();
  const auto guess = closest(word, subs);
  return guess.empty() ? fmt::format("unknown subcommand \"{}\"", word)
                       : fmt::format("unknown subcommand \"{}\" (did you mean {}?)", word, guess);
}

// CLI11's wording of a bad value said plainly: "--batch-size: Value abc not in range 1 to 16" is
// "--batch-size: abc is not a number (1 to 16)" (or "... 99 is not in the range 1 to 16"), and
// "Could not convert: --follow = maybe" is "--follow: maybe is not a valid value" (so that the
// environment note below can follow it too).
std::string plainly(const std::string& message) {
  const auto colon = message.find(": Value ");
  const auto range = message.find(" not in range ");
  if (message.rfind("--", 0) == 0 && colon != std::string::npos && range != std::string::npos &&
      range > colon) {
    const auto option = message.substr(0, colon);
    const auto value = message.substr(colon + 8, range - colon - 8);
    const auto bounds = message.substr(range + 14);
    char* end = nullptr;
    errno = 0;
    (void) std::strtod(value.c_str(), &end);
    const bool number = !value.empty() && end == value.c_str() + value.size() && errno == 0;
    return number ? fmt::format("{}: {} is not in the range {}", option, value, bounds)
                  : fmt::format("{}: {} is not a number ({})", option, value, bounds);
  }
  const std::string convert = "Could not convert: ";
  const auto eq = message.find(" = ");
  if (message.rfind(convert, 0) == 0 && eq != std::string::npos)
    return fmt::format("{}: {} is not a valid value", message.substr(convert.size(), eq - convert.size()),
                       message.substr(eq + 3));
  return message;
}

// CLI11's `message` about an option's value ("--batch-size: abc is not ..."), naming the environment
// variable the value came from: the option's variable is set and the command line does not give it.
std::string env_located(const CLI::App& app, const std::string& message,
                        const std::vector<std::string>& args) {
  const auto end = message.find(':');
  if (message.rfind("--", 0) != 0 || end == std::string::npos)
    return message;
  const auto flag = message.substr(0, end);
  for (const auto& a : args)
    if (a == flag || a.rfind(flag + "=", 0) == 0)
      return message;
  for (const CLI::App* at = deepest(app); at != nullptr; at = at->get_parent())
    for (const auto* op : at->get_options())
      if (op->check_lname(flag.substr(2)) && !op->get_envname().empty()) {
        const char* value = std::getenv(op->get_envname().c_str());
        return value == nullptr || *value == '\0' ? message
                                                  : fmt::format("{} (from the environment: {}={})",
                                                                message, op->get_envname(), value);
      }
  return message;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardflow - process sharded record streams with flushers, checkpoints and "
               "supervised shard actors"};
  app.require_subcommand(1);
  app.fallthrough(); // global options after the subcommand too
  app.footer(exit_code_help);
  app.set_version_flag("--version", "shardflow " SHARDFLOW_VERSION);
  app
    .set_config("--config", "",
                "read options from a TOML file: top-level keys for the global options, a table "
                "per subcommand ([run], [mld-server]); unknown keys are errors")
    ->type_name("FILE");
  const auto config = std::make_shared<strict_toml_config>(app);
  app.config_formatter(config);
  add_log_options(app);
  name_env_vars(app);
  int exit_code = exit_ok;
  add_put_command(app, exit_code);
  add_generate_command(app, exit_code);
  add_run_command(app, exit_code);
  add_mld_commands(app, exit_code);
  add_kafka_commands(app, exit_code);
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    on_entering(*sub, "shardflow " + sub->get_name());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "shardflow: {}\nRun with --help for more information.\n",
               config->located(
                 env_located(app, plainly(usage_message(app, e)), {argv + 1, argv + argc})));
    return exit_usage;
  }
  return exit_code;
}
