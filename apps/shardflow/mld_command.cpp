#include "apps/shardflow/mld_command.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/flusher_choice.hpp"
#include "apps/shardflow/guarded.hpp"
#include "apps/shardflow/mld_metrics.hpp"
#include "apps/shardflow/mld_properties.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/partition_key.hpp"
#include "apps/shardflow/signals.hpp"
#include "apps/shardflow/status_server.hpp"
#include "apps/shardflow/stream_commands.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/base64.hpp>
#include <shardflow/kcl/kpl.hpp>
#include <shardflow/kcl/mld_protocol.hpp>
#include <shardflow/kcl/mld_server.hpp>
#include <shardflow/kcl/mld_worker.hpp>

namespace shardflow::cli {

namespace {

struct mld_options {
  std::string flusher; // required: no default that drops the records
  flusher_options flushing;
  std::string stream_name = flusher_settings{}.stream;
  std::size_t batch_size = 1000;
  std::string flush_interval = "1s";
  std::string checkpoint_interval = "10s";
  unsigned checkpoint_retries = 5;
  std::string checkpoint_backoff = "1s";
  bool no_erlmld_magic = false;
  bool subsequence_checkpoints = false;
  std::string dead_letter;
  std::string max_line = "64M";
  std::string kpl_max_inflated = "10M";
  std::size_t kpl_max_records = kpl::unpack_limits{}.max_user_records;
  std::uint64_t crash_after = 0;
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  bool allow_remote = false;
  std::size_t max_connections = mld::server_config{}.max_connections;
  std::string handshake_timeout = "30s";
  std::string metrics; // HOST:PORT; empty: none
};

// For testing recovery: the flusher fails once, after `after` records in all (across restarts).
class crash_once_flusher final : public flusher_decorator {
public:
  crash_once_flusher(std::unique_ptr<flusher> inner,
                     std::shared_ptr<std::atomic<std::uint64_t>> left)
    : flusher_decorator(std::move(inner)), left_(std::move(left)) {
  }
  add_result add(const stream_record& x, flush_token t) override {
    if (left_->load() > 0 && left_->fetch_sub(1) == 1)
      throw error{errc::flusher_failed, "injected failure (--crash-after)"};
    return inner().add(x, t);
  }

private:
  std::shared_ptr<std::atomic<std::uint64_t>> left_;
};

std::size_t size_or_throw(const std::string& option, const std::string& text) {
  const auto n = checked(parse_size(option, text));
  if (n == 0 || n > std::numeric_limits<std::size_t>::max() / 2)
    usage(fmt::format("{}: \"{}\" is not a size above 0 (use 1000, 64k, 256M, 1G)", option, text));
  return static_cast<std::size_t>(n);
}

mld::worker_config worker_config_of(const mld_options& o, bool stdio) {
  if (o.flusher.empty())
    usage(
      "--flusher is required: where the records go (file:DIR, postgres:CONNINFO, "
      "kafka:BROKERS/TOPIC; or null, which writes nothing and still checkpoints every record)");
  auto spec = parse_flusher(o.flusher);
  if (!spec)
    usage("--flusher: " + spec.error());
  if (stdio && spec->name == "stdout")
    usage(
      "--flusher stdout cannot be used by `shardflow mld`: standard output carries the protocol "
      "(use file:DIR, or mld-server)");
  if (spec->name == "null")
    say(log_level::warning,
        "--flusher null: nothing is written; every record is acknowledged and checkpointed as "
        "if it were durable");
  mld::worker_config cfg;
  cfg.log = cli_log();
  flusher_settings flushing;
  flushing.batch_records = o.batch_size;
  flushing.stream = o.stream_name;
  apply_flusher_options(o.flushing, flushing);
  cfg.make_flusher = make_flusher_factory(*spec, flushing);
  if (o.crash_after > 0) {
    auto left = std::make_shared<std::atomic<std::uint64_t>>(o.crash_after);
    cfg.make_flusher = [inner = cfg.make_flusher,
                        left](const shard_id& id) -> std::unique_ptr<flusher> {
      return std::make_unique<crash_once_flusher>(inner(id), left);
    };
  }
  cfg.batch.flush_interval = duration_option("--flush-interval", o.flush_interval);
  cfg.batch.checkpoint_interval = duration_option("--checkpoint-interval", o.checkpoint_interval);
  cfg.batch.enable_subsequence_checkpoints = o.subsequence_checkpoints;
  cfg.checkpoint_retries = o.checkpoint_retries;
  cfg.checkpoint_backoff = duration_option("--checkpoint-backoff", o.checkpoint_backoff);
  cfg.erlmld_magics = !o.no_erlmld_magic;
  cfg.dead_letter_dir = o.dead_letter;
  cfg.kpl_limits.max_inflated_bytes = size_or_throw("--kpl-max-inflated", o.kpl_max_inflated);
  cfg.kpl_limits.max_user_records = o.kpl_max_records;
  return cfg;
}

int run_stdio_worker(const mld_options& o) {
  auto cfg = worker_config_of(o, true);
  cfg.meters = std::make_shared<mld::worker_meters>();
  std::optional<status_server> status;
  if (!o.metrics.empty())
    status.emplace(
      metrics_address_of(o.metrics, o.allow_remote),
      [m = cfg.meters] { return mld_prometheus_text(*m, nullptr); },
      [m = cfg.meters] { return mld_worker_readiness(*m); }, SHARDFLOW_VERSION);
  // The daemon ends a child by closing its stdin; a signal to the whole process group must not cut
  // the protocol short, and a vanished daemon must not kill us with SIGPIPE.
  ignore_sigpipe();
  ignore_stop_signals();
  mld::fd_line_io_config line_cfg;
  line_cfg.max_line_bytes = size_or_throw("--max-line", o.max_line);
  mld::fd_line_io io{STDIN_FILENO, STDOUT_FILENO, line_cfg};
  mld::worker w{io, cfg};
  const int rc = w.run();
  const auto& s = w.stats();
  say(log_level::info, "session ended: {}, {} ({} corrupt), {} poison, {} ({}), {}, {}",
      plural(s.records, "record"), plural(s.aggregates, "aggregate"), s.corrupt_aggregates,
      s.poison, plural(s.checkpoints, "checkpoint"), plural(s.checkpoint_errors, "error"),
      plural(s.ignored_lines, "ignored line"), plural(s.dead_letters, "dead letter"));
  return rc == 0 ? exit_ok : exit_failed;
}

// The server's address and client limits; a non-loopback TCP address needs --allow-remote (the
// protocol has no authentication).
void server_limits_of(const mld_options& o, mld::server_config& cfg) {
  const auto at = checked(parse_listen_address("--listen", o.listen, true));
  if (at.unix_path.empty() && !is_loopback_host(at.host) && !o.allow_remote)
    throw CLI::ValidationError(fmt::format(
      "--listen {}: not a loopback address; mld-server does not authenticate its clients (whoever "
      "connects can feed and checkpoint shards): listen on 127.0.0.1, ::1 or unix:PATH, or pass "
      "--allow-remote if a firewall restricts who can reach it",
      o.listen));
  cfg.host = at.host;
  cfg.port = at.port;
  cfg.unix_path = at.unix_path;
  cfg.max_connections = o.max_connections;
  cfg.handshake_timeout = duration_option("--handshake-timeout", o.handshake_timeout);
  cfg.line.max_line_bytes = size_or_throw("--max-line", o.max_line);
}

int run_server(const mld_options& o) {
  mld::server_config cfg;
  cfg.log = cli_log();
  cfg.worker = worker_config_of(o, false);
  server_limits_of(o, cfg);
  cfg.worker.meters = std::make_shared<mld::worker_meters>();
  const auto metrics_at = o.metrics.empty() ? listen_address{}
                                            : metrics_address_of(o.metrics, o.allow_remote);
  ignore_sigpipe();
  stop_on_signals("mld-server");
  mld::server srv{cfg};
  status_server status{
    metrics_at, [m = cfg.worker.meters, &srv] { return mld_prometheus_text(*m, &srv.stats()); },
    [&srv] {
      return readiness{true, fmt::format("listening; {} active",
                                         plural(srv.stats().active.load(), "session"))};
    },
    SHARDFLOW_VERSION};
  if (cfg.unix_path.empty())
    say(log_level::info, "listening on {}:{}",
        cfg.host.find(':') == std::string::npos ? cfg.host : "[" + cfg.host + "]", srv.port());
  else
    say(log_level::info, "listening on unix:{}", cfg.unix_path);
  if (!o.port_file.empty()) {
    std::ofstream out{o.port_file + ".tmp"};
    out << srv.port() << "\n";
    out.close();
    std::filesystem::rename(o.port_file + ".tmp", o.port_file);
  }
  srv.serve(stop_requested());
  say(log_level::info, "stopped after {} ({} failed)",
      plural(srv.stats().sessions.load(), "session"), srv.stats().failed.load());
  return exit_ok;
}

struct kpl_agg_options {
  std::size_t per_aggregate = 100;
  std::string magic = "standard";
  std::string key_field;
};

int run_kpl_agg(const kpl_agg_options& o) {
  const auto m = o.magic == "erlmld"            ? kpl::magic::erlmld_plain
                 : o.magic == "erlmld-deflated" ? kpl::magic::erlmld_deflated
                                                : kpl::magic::standard;
  kpl::aggregator agg;
  std::string line;
  std::uint64_t records = 0;
  std::uint64_t aggregates = 0;
  auto emit = [&] {
    if (agg.size() == 0)
      return;
    std::cout << base64::encode(agg.build(m)) << '\n';
    ++aggregates;
  };
  std::uint64_t number = 0;
  check_input("-");
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    auto key = o.key_field.empty() ? result<std::string>{line}
                                   : partition_key_of(line, o.key_field);
    if (!key)
      throw error{errc::bad_input, fmt::format("<stdin>:{}: {} (after {} packed)", number,
                                               key.error(), plural(records, "line"))};
    agg.add(*key, line);
    ++records;
    if (agg.size() >= o.per_aggregate)
      emit();
  }
  emit();
  std::cout.flush();
  say(log_level::info, "{} in {} ({} magic), base64, one per line", plural(records, "record"),
      plural(aggregates, "aggregate"), o.magic);
  return exit_ok;
}

void add_worker_options(CLI::App* cmd, mld_options* o) {
  cmd
    ->add_option("--flusher", o->flusher,
                 "where the records go (required): file:DIR | postgres:CONNINFO | "
                 "kafka:BROKERS/TOPIC | null (writes nothing) | stdout (mld-server only)");
  add_flusher_options(cmd, &o->flushing);
  cmd->add_option("--stream-name", o->stream_name, "postgres flusher: the stream column's value")
    ->capture_default_str();
  cmd->add_option("--metrics", o->metrics,
                  "serve HTTP on HOST:PORT (loopback unless --allow-remote): Prometheus metrics at "
                  "/metrics, /healthz, /readyz (mld: one worker's; mld-server: every shard's)");
  cmd->add_flag("--allow-remote", o->allow_remote,
                "allow a non-loopback --metrics (and mld-server --listen) address");
  cmd->add_option("--batch-size", o->batch_size, "the flusher's capacity in records")
    ->check(CLI::Range(1, 1 << 24))
    ->capture_default_str();
  add_duration(cmd, "--flush-interval", o->flush_interval, "flush at least this often")
    ->capture_default_str();
  add_duration(cmd, "--checkpoint-interval", o->checkpoint_interval,
               "checkpoint at most this often")
    ->capture_default_str();
  cmd
    ->add_option("--checkpoint-retries", o->checkpoint_retries,
                 "attempts for throttled checkpoints while handling processRecords")
    ->capture_default_str();
  add_duration(cmd, "--checkpoint-backoff", o->checkpoint_backoff,
               "first retry delay (doubles with jitter, capped at 30s)")
    ->capture_default_str();
  cmd->add_flag("--no-erlmld-magic", o->no_erlmld_magic,
                "do not unpack erlmld's aggregate magics (00/01 89 9A C2)");
  cmd->add_flag("--subsequence-checkpoints", o->subsequence_checkpoints,
                "allow checkpoints inside KPL aggregates unpacked by the worker");
  cmd->add_option("--crash-after", o->crash_after,
                  "testing: the flusher fails once after this many records (0: never)");
  cmd
    ->add_option("--dead-letter", o->dead_letter,
                 "append records without a usable sequence number (else fatal) and poison records "
                 "to DIR/<shard>.ndjson, synced before they count as done")
    ->type_name("DIR");
  cmd
    ->add_option("--max-line", o->max_line,
                 "the longest input line (a batch); a longer one fails the session")
    ->type_name("SIZE")
    ->capture_default_str();
  cmd
    ->add_option(
      "--kpl-max-inflated", o->kpl_max_inflated,
      "inflated bytes of one deflated KPL aggregate; past it the aggregate is one record")
    ->type_name("SIZE")
    ->capture_default_str();
  cmd
    ->add_option("--kpl-max-records", o->kpl_max_records,
                 "user records of one KPL aggregate; past it the aggregate is one record")
    ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
    ->capture_default_str();
}

void add_properties_options(CLI::App* props, mld_properties_config* p) {
  props->add_option("--kcl", p->kcl, "the daemon's generation: 1, 2 or 3 (its keys and run line)")
    ->check(CLI::IsMember({1, 2, 3}))
    ->capture_default_str();
  props
    ->add_option("--mode", p->mode,
                 "stdio (a worker per shard) or server (mld-server + mld-connect)")
    ->check(CLI::IsMember({"stdio", "server"}))
    ->capture_default_str();
  props->add_option("--listen", p->listen, "server mode: the mld-server's HOST:PORT")
    ->capture_default_str();
  props->add_option("--stream", p->stream, "the Kinesis stream's name")->capture_default_str();
  props->add_option("--stream-arn", p->stream_arn,
                    "the stream's ARN instead of its name (KCL 2 and 3)");
  props->add_option("--app", p->app, "the application (lease table) name")->capture_default_str();
  props->add_option("--region", p->region, "the AWS region (default: the ARN's, else us-east-1)");
  props->add_option("--flusher", p->flusher,
                    "the flusher of the default executable (server mode: of the mld-server)")
    ->capture_default_str();
  props->add_option("--executable", p->executable,
                    "the worker command line (default: shardflow mld --flusher FLUSHER)");
  props
    ->add_option("--initial-position", p->initial_position, "TRIM_HORIZON | LATEST | AT_TIMESTAMP")
    ->check(CLI::IsMember({"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"}))
    ->capture_default_str();
  props->add_option("--initial-position-timestamp", p->initial_position_timestamp,
                    "AT_TIMESTAMP's time: epoch seconds or YYYY-MM-DDTHH:MM:SSZ");
  props->add_option("--kinesis-endpoint", p->kinesis_endpoint, "emulators: the Kinesis endpoint");
  props->add_option("--dynamodb-endpoint", p->dynamodb_endpoint,
                    "emulators: the DynamoDB endpoint");
  props
    ->add_option("--metrics-level", p->metrics_level,
                 "the daemon's CloudWatch metrics: NONE, SUMMARY, DETAILED")
    ->check(CLI::IsMember({"NONE", "SUMMARY", "DETAILED"}))
    ->capture_default_str();
}

} // namespace

namespace {

// Defaults that look real get deployed: says which values are the command's placeholders.
void warn_placeholders(const mld_properties_config& p, const CLI::App& props) {
  std::vector<std::string> placeholders;
  if (props.count("--stream") == 0 && p.stream_arn.empty())
    placeholders.push_back(fmt::format("stream {} (--stream or --stream-arn)", p.stream));
  if (props.count("--app") == 0)
    placeholders.push_back(fmt::format("application {} (--app: it names the lease table)", p.app));
  if (p.region.empty() && p.stream_arn.empty())
    placeholders.push_back("region us-east-1 (--region)");
  if (!placeholders.empty())
    say(log_level::warning, "the file names the command's placeholders for {}: set them before "
                            "you deploy it",
        fmt::join(placeholders, ", "));
}

// `mld` (the stdio worker) and `mld properties`.
void add_mld_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<mld_options>();
  auto* cmd = app.add_subcommand(
    "mld", "Serve one shard for the KCL MultiLangDaemon over stdin/stdout (its executableName)");
  add_worker_options(cmd, o.get());
  auto p = std::make_shared<mld_properties_config>();
  auto* props = cmd->add_subcommand("properties", "Print a MultiLangDaemon properties file");
  add_properties_options(props, p.get());
  props->callback([p, props, &exit_code] {
    exit_code = guarded("mld properties", [&] {
      const auto text = checked(mld_properties_text(*p)); // a usage error comes before any warning
      warn_placeholders(*p, *props);
      fmt::print("{}", text);
      return exit_ok;
    });
  });
  cmd->callback([o, cmd, &exit_code] {
    if (cmd->got_subcommand("properties"))
      return;
    exit_code = guarded("mld", [&] { return run_stdio_worker(*o); });
  });
}

// `mld-server`.
void add_server_command(CLI::App& app, int& exit_code) {
  auto so = std::make_shared<mld_options>();
  auto* srv = app.add_subcommand(
    "mld-server", "Serve every shard of a MultiLangDaemon in one process, one TCP connection per "
                  "shard (the daemon's executableName is `shardflow mld-connect HOST:PORT`)");
  add_worker_options(srv, so.get());
  srv
    ->add_option("--listen", so->listen,
                 "HOST:PORT (port 0: any free port) or unix:PATH (a socket only this user can use)")
    ->capture_default_str();
  srv
    ->add_option("--max-connections", so->max_connections,
                 "sessions served at once; further connections are closed at once")
    ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
    ->capture_default_str();
  add_duration(srv, "--handshake-timeout", so->handshake_timeout,
               "close a connection that sends no initialize within this (0: never)")
    ->capture_default_str();
  srv->add_option("--port-file", so->port_file, "write the port here once listening (0 for unix:)");
  srv->callback(
    [so, &exit_code] { exit_code = guarded("mld-server", [&] { return run_server(*so); }); });
}

// `mld-connect`.
void add_connect_command(CLI::App& app, int& exit_code) {
  auto target = std::make_shared<std::string>();
  auto* conn = app.add_subcommand(
    "mld-connect",
    "Bridge stdin/stdout to an mld-server (put this in the daemon's executableName)");
  conn->add_option("address", *target, "HOST:PORT or unix:PATH of the mld-server")->required();
  conn->callback([target, &exit_code] {
    auto at = parse_listen_address("address", *target, false);
    if (!at) {
      say(log_level::error, at.error());
      exit_code = exit_usage;
      return;
    }
    // Like `shardflow mld`: the daemon ends its child by closing stdin, so a signal to the process
    // group must not cut the session short, and a closed socket must not kill us with SIGPIPE.
    ignore_sigpipe();
    ignore_stop_signals();
    const auto log = cli_log();
    const int rc = at->unix_path.empty() ? mld::connect_stdio(at->host, at->port, log)
                                         : mld::connect_stdio_unix(at->unix_path, log);
    exit_code = rc == 0 ? exit_ok : exit_failed;
  });
}

// `kpl-agg`.
void add_kpl_agg_command(CLI::App& app, int& exit_code) {
  auto k = std::make_shared<kpl_agg_options>();
  auto* agg = app.add_subcommand(
    "kpl-agg", "Pack lines from stdin into KPL aggregates (base64, one per line on stdout)");
  agg->add_option("--records", k->per_aggregate, "user records per aggregate")
    ->check(CLI::Range(1, 100000))
    ->capture_default_str();
  agg->add_option("--magic", k->magic, "standard | erlmld | erlmld-deflated")
    ->check(CLI::IsMember({"standard", "erlmld", "erlmld-deflated"}))
    ->capture_default_str();
  agg->add_option("--key", k->key_field,
                  "NDJSON field holding the partition key (default: the line)");
  agg->callback(
    [k, &exit_code] { exit_code = guarded("kpl-agg", [&] { return run_kpl_agg(*k); }); });
}

} // namespace

void add_mld_commands(CLI::App& app, int& exit_code) {
  add_mld_command(app, exit_code);
  add_server_command(app, exit_code);
  add_connect_command(app, exit_code);
  add_kpl_agg_command(app, exit_code);
}

} // namespace shardflow::cli
