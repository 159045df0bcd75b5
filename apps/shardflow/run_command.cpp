#include "apps/shardflow/run_command.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <unistd.h>

#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/guarded.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/run_report.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/flushers/null_flusher.hpp>
#include <shardflow/local/local_stream.hpp>
#include <shardflow/stores/sqlite_checkpoint_store.hpp>

namespace fs = std::filesystem;

namespace shardflow::cli {

namespace {

// -- signals: the first asks for a graceful stop, the second ends the process at once ---------------

std::atomic<int> signals_seen{0};

extern "C" void on_signal(int) {
  if (signals_seen.fetch_add(1) >= 1) {
    const char msg[] = "\nshardflow: stopping at once; a rerun resumes from the checkpoints\n";
    auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void) ignored;
    ::_exit(exit_interrupted);
  }
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// -- configuration ---------------------------------------------------------------------------------

struct run_config {
  std::string stream;
  std::string flusher = "file";
  std::string checkpoints;
  std::string stream_name;
  std::string shards = "all";
  std::size_t batch_size = 1000;
  std::string flush_interval = "1s";
  std::string checkpoint_interval = "1s";
  std::string heartbeat_interval = "1s";
  std::string watchdog = "0";
  std::string roll_size = "0";
  std::string roll_age = "0";
  int intensity = 10;
  // A short outage (ENOSPC, EACCES) is waited out for about 25 s (10 restarts, 100 ms doubling to
  // 4 s, with jitter); a shard failing for longer gives up, so a job never retries for ever.
  std::string period = "60s";
  std::string backoff_min = "100ms";
  std::string backoff_max = "4s";
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  bool follow = false;
  std::string bad_input = "stop";
  std::string dead_letter;
  std::string max_record_size = "16M";
  bool json = false;
  std::string metrics;
  bool allow_remote = false;
  std::string progress = "auto";
  std::string detached = "auto";
};

// The values of a run_config, checked and converted.
struct run_plan {
  local::stream_dir stream;
  std::vector<std::size_t> shards;
  flusher_spec flusher;
  fs::path checkpoints;
  std::string stream_name;
  batch_config batch;
  std::chrono::milliseconds heartbeat{};
  std::uint64_t roll_bytes = 0;
  std::chrono::milliseconds roll_age{};
  std::chrono::milliseconds period{};
  backoff_spec backoff;
  local::bad_input_policy on_bad_input = local::bad_input_policy::stop;
  fs::path dead_letter;
  std::size_t max_line_bytes = 0;
  bool detached = false;
  std::string metrics_host;
  int metrics_port = 0;
};

std::chrono::milliseconds duration_of(const std::string& option, const std::string& text) {
  auto d = parse_duration(text);
  if (!d)
    usage(fmt::format("{}: \"{}\" is not a duration (use 0, 250ms, 5s, 2m, 1h)", option, text));
  return *d;
}

run_plan make_plan(const run_config& cfg) {
  run_plan p;
  p.stream = local::stream_dir::open(cfg.stream);
  if (auto err = parse_shard_list(cfg.shards, p.stream.shards(), p.shards); !err.empty())
    usage("--shards: " + err);
  auto flusher = cfg.flusher == "file"
                   ? "file:" + (fs::path{cfg.stream}.lexically_normal().string() + ".out")
                   : cfg.flusher;
  if (auto err = parse_flusher(flusher, p.flusher); !err.empty())
    usage("--flusher: " + err);
  p.checkpoints = cfg.checkpoints.empty() ? fs::path{cfg.stream} / "checkpoints.db"
                                          : fs::path{cfg.checkpoints};
  p.stream_name = cfg.stream_name.empty()
                    ? fs::absolute(cfg.stream).lexically_normal().filename().string()
                    : cfg.stream_name;
  if (p.stream_name.empty())
    p.stream_name = "stream";
  p.batch.flush_interval = duration_of("--flush-interval", cfg.flush_interval);
  p.batch.checkpoint_interval = duration_of("--checkpoint-interval", cfg.checkpoint_interval);
  p.batch.watchdog_timeout = duration_of("--watchdog", cfg.watchdog);
  p.heartbeat = duration_of("--heartbeat-interval", cfg.heartbeat_interval);
  auto roll = parse_size(cfg.roll_size);
  if (!roll)
    usage(fmt::format("--roll-size: \"{}\" is not a size (use 0, 64M, 1G)", cfg.roll_size));
  p.roll_bytes = *roll;
  p.roll_age = duration_of("--roll-age", cfg.roll_age);
  p.period = duration_of("--period", cfg.period);
  if (p.period < std::chrono::seconds(1))
    usage("--period must be at least 1s");
  p.backoff.min = duration_of("--backoff-min", cfg.backoff_min);
  p.backoff.max = duration_of("--backoff-max", cfg.backoff_max);
  // Restarts at least `max` (and up to 1.2 max, with jitter) apart must fit `intensity` times into
  // the period, or a shard that keeps failing would be restarted for ever and the run never end.
  if (cfg.intensity > 0 && p.backoff.min.count() > 0
      && p.backoff.max * 12 / 10 * cfg.intensity >= p.period)
    usage(
      fmt::format("--backoff-max {} with --intensity {} and --period {}: {} restarts cannot fit "
                  "into the period, so a shard that keeps failing would never give up; lower "
                  "--backoff-max or raise --period",
                  cfg.backoff_max, cfg.intensity, cfg.period, cfg.intensity));
  p.on_bad_input = cfg.bad_input == "dead-letter" ? local::bad_input_policy::dead_letter
                                                  : local::bad_input_policy::stop;
  p.dead_letter = cfg.dead_letter.empty() ? fs::path{cfg.stream} / "dead-letter"
                                          : fs::path{cfg.dead_letter};
  auto max_line = parse_size(cfg.max_record_size);
  if (!max_line || *max_line == 0 || *max_line > (std::uint64_t{1} << 32))
    usage(fmt::format("--max-record-size: \"{}\" is not a size from 1 to 4G (use 64k, 16M)",
                      cfg.max_record_size));
  p.max_line_bytes = static_cast<std::size_t>(*max_line);
  p.detached = cfg.detached == "yes"
               || (cfg.detached == "auto" && p.flusher.name == "file" && p.shards.size() <= 64);
  if (!cfg.metrics.empty() && !parse_host_port(cfg.metrics, p.metrics_host, p.metrics_port))
    usage(fmt::format("--metrics: \"{}\" is not HOST:PORT", cfg.metrics));
  if (!cfg.metrics.empty() && !is_loopback_host(p.metrics_host) && !cfg.allow_remote)
    usage(fmt::format("--metrics {}: not a loopback address; the metrics are served to whoever "
                      "connects: use 127.0.0.1 or ::1, or pass --allow-remote if a firewall "
                      "restricts who can reach it",
                      cfg.metrics));
  return p;
}

flusher_factory make_flusher_factory(const run_plan& p, const run_config& cfg) {
  if (p.flusher.name == "null")
    return null_flusher::factory(cfg.batch_size);
  if (p.flusher.name == "stdout")
    return stdout_flusher::factory(cfg.batch_size);
  file_flusher_config f;
  f.dir = p.flusher.argument;
  f.batch_records = cfg.batch_size;
  f.roll_bytes = p.roll_bytes;
  f.roll_age = std::chrono::duration_cast<std::chrono::seconds>(p.roll_age);
  // Fail early with a clear message rather than in every shard.
  std::error_code ec;
  fs::create_directories(f.dir, ec);
  if (ec || ::access(f.dir.c_str(), W_OK) != 0)
    throw error{errc::io_failed,
                fmt::format("cannot write to the output directory {}{}", f.dir.string(),
                            ec ? ": " + ec.message() : std::string{": permission denied"})};
  return file_flusher::factory(f);
}

// -- the run ---------------------------------------------------------------------------------------

class run_state {
public:
  run_state(const run_plan& plan, std::vector<shard_view> views)
    : plan_(plan), views_(std::move(views)), reader_(plan.checkpoints, plan.stream_name) {
    refresh();
    for (auto& v : views_)
      v.generation_at_start = v.generation;
  }

  // Re-reads the checkpoint rows and file sizes. The report only reads: when the database is busy
  // for a moment (another connection recovering or checkpointing its WAL), it keeps what it had and
  // tries again on the next tick, a few times before giving up.
  void refresh(int attempts = 1) {
    std::map<std::string, stored_checkpoint> rows;
    for (int i = 0;; ++i) {
      try {
        for (auto& [id, row] : reader_.rows())
          rows[id] = row;
        break;
      } catch (const error&) {
        if (i + 1 >= attempts)
          return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    for (std::size_t i = 0; i < views_.size(); ++i) {
      auto& v = views_[i];
      std::error_code ec;
      v.input_bytes = fs::file_size(plan_.stream.shard_file(plan_.shards[i]), ec);
      auto r = rows.find(v.id);
      if (r == rows.end())
        continue;
      std::optional<std::uint64_t> cp;
      if (r->second.position)
        cp = r->second.position->base.to_uint64();
      if (cp != v.checkpoint || v.last_checkpoint_change == std::chrono::steady_clock::time_point{})
        v.last_checkpoint_change = now;
      v.checkpoint = cp;
      v.ended = r->second.ended;
      v.generation = r->second.generation;
    }
  }

  std::vector<shard_view> views() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return views_;
  }

private:
  const run_plan& plan_;
  mutable std::mutex mtx_;
  std::vector<shard_view> views_;
  sqlite_checkpoint_store reader_;
};

int run_job(const run_config& cfg) {
  const auto plan = make_plan(cfg);
  auto problems = std::make_shared<local::input_problems>();
  // The store is opened here first so a bad database fails before anything starts.
  auto store = std::make_shared<sqlite_checkpoint_store>(plan.checkpoints, plan.stream_name);
  auto flushers = make_flusher_factory(plan, cfg);
  std::vector<shard_view> views;
  for (auto i : plan.shards) {
    shard_view v;
    v.id = local::shard_name(i);
    v.meter = std::make_shared<flusher_meter>();
    views.push_back(std::move(v));
  }
  run_state state{plan, views};

  caf::actor_system_config sys_cfg;
  configure(sys_cfg);
  sys_cfg.set("scheduler.max-threads", cfg.threads);
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{sys_cfg};

  runtime_config rcfg;
  rcfg.finite = !cfg.follow;
  rcfg.intensity = cfg.intensity;
  rcfg.period = std::chrono::duration_cast<std::chrono::seconds>(plan.period);
  rcfg.sink = spawn_checkpoint_sink(sys, store, true);
  auto rt = runtime::start(sys, rcfg);
  if (!rt)
    throw error{errc::start_failed, sys.render(rt.error())};

  install_signal_handlers();
  for (std::size_t k = 0; k < plan.shards.size(); ++k) {
    const auto i = plan.shards[k];
    shard_group_config g;
    g.shard.id = views[k].id;
    g.shard.make_flusher = metered_flusher::wrap(flushers, views[k].meter);
    g.shard.batch = plan.batch;
    g.shard.heartbeat_interval = plan.heartbeat;
    g.shard.credit = std::max<std::size_t>(4 * cfg.batch_size, 2000);
    g.shard.detached = plan.detached;
    g.feeder.max_batch = std::min<std::size_t>(cfg.batch_size, 1000);
    g.feeder.poll_interval = std::chrono::milliseconds(200);
    g.finite = !cfg.follow;
    g.intensity = cfg.intensity;
    g.period = rcfg.period;
    g.backoff = plan.backoff;
    local::file_source_config src;
    src.follow = cfg.follow;
    src.on_bad_input = plan.on_bad_input;
    src.dead_letter_dir = plan.dead_letter;
    src.max_line_bytes = plan.max_line_bytes;
    src.problems = problems;
    g.source = [file = plan.stream.shard_file(i), id = g.shard.id, src] {
      return std::make_shared<local::file_source>(file, id, src);
    };
    if (auto err = (*rt)->start_shard(std::move(g))) {
      (*rt)->shutdown();
      throw error{errc::start_failed, sys.render(err)};
    }
  }

  // Optional Prometheus endpoint.
  std::unique_ptr<httplib::Server> http;
  std::thread http_thread;
  if (plan.metrics_port != 0) {
    http = std::make_unique<httplib::Server>();
    http->Get("/metrics", [&state](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus_text(state.views()), "text/plain; version=0.0.4");
    });
    if (!http->bind_to_port(plan.metrics_host, plan.metrics_port)) {
      (*rt)->shutdown();
      throw error{errc::io_failed, fmt::format("--metrics: cannot listen on {}:{}",
                                               plan.metrics_host, plan.metrics_port)};
    }
    http_thread = std::thread{[&http] { http->listen_after_bind(); }};
  }

  const bool tty = cfg.progress == "tty" || (cfg.progress == "auto" && ::isatty(STDERR_FILENO));
  const bool log_lines = cfg.progress == "log" || (cfg.progress == "auto" && !tty);
  const auto start = std::chrono::steady_clock::now();
  auto last_tick = start;
  auto last_log = start;
  auto before = totals_of(state.views());
  bool stopped = false;
  while (!(*rt)->await(std::chrono::milliseconds(200))) {
    if (signals_seen.load() > 0 && !stopped) {
      stopped = true;
      fmt::print(stderr,
                 "{}shardflow: stopping: every shard flushes and checkpoints (a second "
                 "signal stops at once)\n",
                 tty ? "\n" : "");
      (*rt)->shutdown();
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_tick < std::chrono::seconds(1))
      continue;
    state.refresh();
    auto views_now = state.views();
    auto totals = totals_of(views_now);
    const auto dt = std::chrono::duration<double>(now - last_tick).count();
    const auto total = std::chrono::duration<double>(now - start).count();
    if (tty) {
      fmt::print(stderr, "\r\033[K{}", progress_line(views_now, totals, before, dt, total));
      std::fflush(stderr);
    } else if (log_lines && now - last_log >= std::chrono::seconds(5)) {
      fmt::print(stderr, "shardflow: {}\n", progress_line(views_now, totals, before, dt, total));
      last_log = now;
    }
    before = totals;
    last_tick = now;
  }
  const auto seconds
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (http) {
    http->stop();
    http_thread.join();
  }
  if (tty)
    fmt::print(stderr, "\n");
  state.refresh(50);
  const auto final_views = state.views();
  auto found = problems->all();
  int code = exit_ok;
  if (!(*rt)->ended_cleanly()) {
    const auto why = text_of((*rt)->exit_reason());
    found.push_back(why);
    fmt::print(stderr, "shardflow run: failed: {}\n", why);
    code = exit_failed;
  }
  if (code == exit_ok && !cfg.follow && !stopped) {
    // A finite run is done only when every shard checkpointed its end; a shard group that ran out of
    // restarts ends "normally" for its transient parent, so this is where it shows.
    std::vector<std::string> unfinished;
    for (auto& v : final_views)
      if (!v.ended)
        unfinished.push_back(v.id);
    if (!unfinished.empty() && problems->stops().empty()) {
      auto why = fmt::format("{} of {} shards did not finish ({}{}): they kept failing; see the "
                             "messages above, fix the cause and rerun (they resume from their "
                             "checkpoints)",
                             unfinished.size(), final_views.size(), unfinished.front(),
                             unfinished.size() > 1 ? ", ..." : "");
      fmt::print(stderr, "shardflow run: failed: {}\n", why);
      found.push_back(why);
      code = exit_failed;
    }
  }
  if (const auto stops = problems->stops(); !stops.empty()) {
    for (auto& p : stops)
      fmt::print(stderr, "shardflow run: bad input: {}\n", p);
    fmt::print(stderr,
               "shardflow run: the shards above stopped at their bad input (everything "
               "before it is checkpointed); fix it and rerun{}\n",
               plan.on_bad_input == local::bad_input_policy::stop
                 ? ", or rerun with --bad-input dead-letter for malformed lines"
                 : "");
    code = code == exit_ok ? exit_bad_input : code;
  }
  const auto table = summary_table(final_views, seconds, stopped, problems->dead_letters());
  if (cfg.json) {
    fmt::print(stderr, "{}", table);
    fmt::print("{}", summary_json(final_views, seconds, code, found, problems->dead_letters()));
  } else {
    fmt::print("{}", table);
  }
  return code;
}

} // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto cfg = std::make_shared<run_config>();
  auto* cmd = app.add_subcommand(
    "run", "Process a local stream: one supervised shard actor per shard, flushers, checkpoints");
  cmd->add_option("stream", cfg->stream, "the stream directory")->required();
  cmd->add_option("--flusher", cfg->flusher, "null | stdout | file:DIR (default: file:STREAM.out)");
  cmd->add_option("--checkpoints", cfg->checkpoints,
                  "SQLite checkpoint database (default: STREAM/checkpoints.db)");
  cmd->add_option("--stream-name", cfg->stream_name,
                  "the stream's name in the checkpoint database (default: the directory's name)");
  cmd->add_option("--shards", cfg->shards, "shards to run: all, or a list like 0,2,5-7")
    ->capture_default_str();
  cmd->add_option("--batch-size", cfg->batch_size, "records per flusher batch")
    ->check(CLI::Range(1, 1 << 24))
    ->capture_default_str();
  cmd->add_option("--flush-interval", cfg->flush_interval, "flush at least this often")
    ->capture_default_str();
  cmd
    ->add_option("--checkpoint-interval", cfg->checkpoint_interval, "checkpoint at most this often")
    ->capture_default_str();
  cmd
    ->add_option("--heartbeat-interval", cfg->heartbeat_interval,
                 "how often quiet shards flush and checkpoint")
    ->capture_default_str();
  cmd
    ->add_option("--watchdog", cfg->watchdog,
                 "restart a shard that gets no records for this long (0: off)")
    ->capture_default_str();
  cmd->add_option("--roll-size", cfg->roll_size, "file flusher: new file after this many bytes")
    ->capture_default_str();
  cmd->add_option("--roll-age", cfg->roll_age, "file flusher: new file after this long")
    ->capture_default_str();
  cmd->add_option("--intensity", cfg->intensity, "restarts allowed per period before giving up")
    ->check(CLI::Range(0, 1'000'000))
    ->capture_default_str();
  cmd->add_option("--period", cfg->period, "the restart intensity window")->capture_default_str();
  cmd->add_option("--backoff-min", cfg->backoff_min, "first delay before restarting a shard")
    ->capture_default_str();
  cmd->add_option("--backoff-max", cfg->backoff_max, "longest delay before restarting a shard")
    ->capture_default_str();
  cmd->add_option("--threads", cfg->threads, "CAF worker threads (default: the cores)")
    ->check(CLI::Range(1, 1024))
    ->capture_default_str();
  cmd
    ->add_option("--detached", cfg->detached,
                 "run shards on threads of their own: auto (file flusher, <= 64 shards), yes, no")
    ->check(CLI::IsMember({"auto", "yes", "no"}))
    ->capture_default_str();
  cmd->add_flag("--follow", cfg->follow, "keep reading as the shard files grow (stop with Ctrl-C)");
  cmd
    ->add_option("--bad-input", cfg->bad_input,
                 "stop: end each shard before a malformed line; dead-letter: move it aside")
    ->check(CLI::IsMember({"stop", "dead-letter"}))
    ->capture_default_str();
  cmd->add_option("--dead-letter", cfg->dead_letter,
                  "dead-letter directory (default: STREAM/dead-letter)");
  cmd
    ->add_option("--max-record-size", cfg->max_record_size,
                 "longest record line; a longer one is bad input (--bad-input applies)")
    ->capture_default_str();
  cmd->add_flag("--json", cfg->json,
                "print the summary as JSON on stdout (the table goes to stderr)");
  cmd->add_option(
    "--metrics", cfg->metrics,
    "serve Prometheus metrics on HOST:PORT at /metrics (loopback unless --allow-remote)");
  cmd->add_flag("--allow-remote", cfg->allow_remote, "allow a non-loopback --metrics address");
  cmd->add_option("--progress", cfg->progress, "auto | tty (a live line) | log | off")
    ->check(CLI::IsMember({"auto", "tty", "log", "off"}))
    ->capture_default_str();
  cmd->callback([cfg, &exit_code] { exit_code = guarded("run", [&] { return run_job(*cfg); }); });
}

} // namespace shardflow::cli
