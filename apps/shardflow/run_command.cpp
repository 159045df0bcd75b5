// apps/shardflow/run_command.cpp - `shardflow run`, in four parts: the plan (options checked and
// converted), the job (an actor system, a runtime, one shard group per shard file), the progress
// line, and the verdict (exit code and summary from the runtime's outcome). The HTTP endpoints are
// in status_server.cpp.
#include "apps/shardflow/run_command.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/flusher_choice.hpp"
#include "apps/shardflow/guarded.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/run_report.hpp"
#include "apps/shardflow/signals.hpp"
#include "apps/shardflow/status_server.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/local/local_stream.hpp>
#include <shardflow/local/shard_claim.hpp>
#include <shardflow/stores/sqlite_checkpoint_store.hpp>

namespace fs = std::filesystem;

namespace shardflow::cli {

namespace {

// -- the plan: the options, checked and converted --------------------------------------------------

struct run_config : job_options {
  std::string stream;
  std::string flusher = "file";
  std::string checkpoints;
  std::string stream_name;
  std::string shards = "all";
  bool follow = false;
  std::string bad_input = "stop";
  std::string dead_letter;
  std::string max_record_size = default_max_record_size;
  std::string json; // empty: no JSON summary; "-": stdout
  std::string metrics;
  bool allow_remote = false;
  std::string progress = "auto";
  std::string detached = "auto";
  std::size_t io_threads = 4;
  flusher_options flushing; // rolling, the postgres table
};

// The values of a run_config, checked and converted.
struct run_plan {
  local::stream_dir stream;
  std::vector<std::size_t> shards;
  flusher_spec flusher;
  flusher_settings flushing;
  fs::path checkpoints;
  std::string stream_name;
  shard_group_config shards_template; // batches, intervals, restarts (plan_job_shards)
  std::chrono::milliseconds stop_timeout{};
  std::string stop_text;
  local::bad_input_policy on_bad_input = local::bad_input_policy::stop;
  fs::path dead_letter;
  std::size_t max_line_bytes = 0;
  bool detached = false;
  listen_address metrics;
  std::string json;
};

// The stream directory as a path that ends in its name: "s/", "s/." and "./s" are "s"; a path
// whose last part is "." or ".." is made absolute first. The name keys the stream's checkpoints
// and the default output sits beside it, so every spelling of one directory must give the same.
fs::path stream_path(const std::string& stream) {
  auto p = fs::path{stream}.lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) // a trailing separator: "s/"
    p = p.parent_path();
  if (p.empty() || p.filename() == "." || p.filename() == "..") {
    p = fs::absolute(p).lexically_normal();
    if (!p.has_filename() && p.has_parent_path())
      p = p.parent_path();
  }
  return p;
}

// The stream, its shards, the flusher and where checkpoints and dead letters go.
void plan_io(const run_config& cfg, run_plan& p) {
  // Say more than "not a local stream" where it is clear what is wrong (both are bad input, 3).
  std::error_code ec;
  const auto kind = fs::status(cfg.stream, ec).type();
  if (kind == fs::file_type::not_found)
    throw error{errc::bad_input,
                fmt::format("{} does not exist; create a stream with `shardflow generate` or "
                            "`shardflow put`",
                            cfg.stream)};
  if (kind != fs::file_type::directory && kind != fs::file_type::none
      && kind != fs::file_type::unknown)
    throw error{errc::bad_input,
                fmt::format("{} is a file, not a directory: a local stream is a directory",
                            cfg.stream)};
  p.stream = local::stream_dir::open(cfg.stream);
  auto shards = parse_shard_list(cfg.shards, p.stream.shards());
  if (!shards)
    usage("--shards: " + shards.error());
  p.shards = std::move(*shards);
  auto flusher = cfg.flusher == "file"
                   ? "file:" + stream_path(cfg.stream).string() + ".out"
                   : cfg.flusher;
  auto spec = parse_flusher(flusher);
  if (!spec)
    usage("--flusher: " + spec.error());
  p.flusher = std::move(*spec);
  p.flushing.batch_records = cfg.batch_size;
  apply_flusher_options(cfg.flushing, p.flushing);
  p.checkpoints = cfg.checkpoints.empty() ? fs::path{cfg.stream} / "checkpoints.db"
                                          : fs::path{cfg.checkpoints};
  p.stream_name = cfg.stream_name.empty()
                    ? stream_path(cfg.stream).filename().string()
                    : cfg.stream_name;
  if (p.stream_name.empty())
    p.stream_name = "stream";
  p.flushing.stream = p.stream_name;
  p.on_bad_input = cfg.bad_input == "dead-letter" ? local::bad_input_policy::dead_letter
                                                  : local::bad_input_policy::stop;
  p.dead_letter = cfg.dead_letter.empty() ? fs::path{cfg.stream} / "dead-letter"
                                          : fs::path{cfg.dead_letter};
  p.max_line_bytes = checked(parse_record_size("--max-record-size", cfg.max_record_size));
  // A blocking flusher writes on the I/O pool, so no shard needs a thread of its own; a detached
  // shard's flusher writes on that thread.
  // The stdout flusher writes where it is called: its shards get threads of their own (up to 64 of
  // them), so a reader that stops reading blocks those, never the actor system's threads.
  p.detached = cfg.detached == "yes"
               || (cfg.detached == "auto" && p.flusher.name == "stdout" && p.shards.size() <= 64);
  p.flushing.io_threads = p.detached ? 0 : cfg.io_threads;
}

// The stop's limit.
void plan_timing(const run_config& cfg, run_plan& p) {
  p.shards_template = plan_job_shards(cfg);
  p.stop_timeout = duration_option("--stop-timeout", cfg.stop_timeout);
  p.stop_text = cfg.stop_timeout;
}

// Where the JSON summary and the metrics go.
void plan_reports(const run_config& cfg, run_plan& p) {
  p.json = cfg.json;
  if (p.json == "-" && p.flusher.name == "stdout")
    usage("--json -: the records are on stdout (--flusher stdout), so the JSON summary cannot be; "
          "write it to a file with --json FILE");
  if (cfg.metrics.empty())
    return;
  p.metrics = metrics_address_of(cfg.metrics, cfg.allow_remote);
}

run_plan make_plan(const run_config& cfg) {
  run_plan p;
  plan_io(cfg, p);
  plan_timing(cfg, p);
  plan_reports(cfg, p);
  return p;
}

// -- the job: an actor system, a runtime, one shard group per shard file ---------------------------

// The group of the shard file `index`. Credit, feeder batches and polling keep the library's
// defaults (shard_config, feeder_config).
shard_group_config group_of(const run_config& cfg, const run_plan& plan, std::size_t index,
                            const shard_id& id, flusher_factory flushers,
                            const std::shared_ptr<local::input_problems>& problems) {
  auto g = plan.shards_template;
  g.shard.id = id;
  g.shard.make_flusher = std::move(flushers);
  g.shard.detached = plan.detached;
  g.finite = !cfg.follow;
  local::file_source_config src;
  src.follow = cfg.follow;
  src.on_bad_input = plan.on_bad_input;
  src.dead_letter_dir = plan.dead_letter;
  src.max_line_bytes = plan.max_line_bytes;
  src.problems = problems;
  g.source = [file = plan.stream.shard_file(index), id, src] {
    return std::make_shared<local::file_source>(file, id, src);
  };
  return g;
}

// The running job: the actor system, the runtime and one view per shard (what the report reads),
// refreshed from the runtime's meters and the shard files' sizes. Members end in reverse order: the
// runtime shuts down before its actor system.
class job {
public:
  // The actor system and the runtime, and a view of every planned shard (none started yet: see
  // start_shards), so that the status server can answer before the first shard starts.
  job(const run_config& cfg, const run_plan& plan)
    : cfg_(cfg), plan_(plan), problems_(std::make_shared<local::input_problems>()) {
    // The store is opened first so a bad database fails before anything starts.
    auto store = std::make_shared<sqlite_checkpoint_store>(plan.checkpoints, plan.stream_name);
    flushers_ = make_flusher_factory(plan.flusher, plan.flushing);
    sys_cfg_ = system_config_of(cfg);
    sys_ = std::make_unique<caf::actor_system>(*sys_cfg_);
    runtime_config rcfg;
    rcfg.finite = !cfg.follow;
    // A shard whose group gave up (its --intensity spent) is final and isolated: the root does not
    // start it again (that would make --intensity meaningless) and the other shards finish their
    // work; the run then fails naming it.
    rcfg.restart_groups = false;
    rcfg.sink = spawn_checkpoint_sink(*sys_, store, true);
    rcfg.log = cli_log();
    auto rt = runtime::start(*sys_, rcfg);
    if (!rt)
      throw error_of(rt.error(), errc::start_failed);
    rt_ = std::move(*rt);
    for (auto i : plan.shards) {
      shard_view v;
      v.id = local::shard_name(i);
      v.meter = std::make_shared<flusher_meter>();
      views_.push_back(std::move(v));
    }
  }

  // Starts the planned shards one by one; a stop during the start starts no more: those keep
  // their row, `not started`. Returns how many were left unstarted.
  std::size_t start_shards() {
    std::size_t k = 0;
    for (; k < plan_.shards.size() && !stop_requested().load(); ++k)
      start_shard(k);
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto rest = k; rest < views_.size(); ++rest)
      views_[rest].not_started = true;
    return views_.size() - k;
  }

  runtime& rt() noexcept {
    return *rt_;
  }

  const local::input_problems& problems() const noexcept {
    return *problems_;
  }

  void refresh() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    for (std::size_t k = 0; k < views_.size(); ++k) {
      std::error_code ec;
      views_[k].input_bytes = fs::file_size(plan_.stream.shard_file(plan_.shards[k]), ec);
      if (auto m = rt_->meters(views_[k].id))
        views_[k].update(*m, now);
      views_[k].stopped_at = problems_->stop_of(views_[k].id);
    }
  }

  std::vector<shard_view> views() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return views_;
  }

private:
  // Starts the planned shard `k` (the k-th of plan.shards), metered into its view.
  void start_shard(std::size_t k) {
    shard_view v;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      v = views_[k];
    }
    auto g = group_of(cfg_, plan_, plan_.shards[k], v.id, metered_flusher::wrap(flushers_, v.meter),
                      problems_);
    if (auto err = rt_->start_shard(std::move(g)))
      throw error_of(err, errc::start_failed);
  }

  const run_config& cfg_;
  const run_plan& plan_;
  std::shared_ptr<local::input_problems> problems_;
  flusher_factory flushers_;
  std::unique_ptr<caf::actor_system_config> sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<runtime> rt_;
  mutable std::mutex mtx_;
  std::vector<shard_view> views_;
};

// -- progress: a live line on a terminal, a log line every 5 s otherwise ---------------------------

class progress_printer {
public:
  explicit progress_printer(const std::string& mode)
    : tty_(mode == "tty" || (mode == "auto" && ::isatty(STDERR_FILENO))),
      log_lines_(mode == "log" || (mode == "auto" && !tty_)) {
  }

  bool tty() const noexcept {
    return tty_;
  }

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // Prints when a second has passed since the last tick; returns whether it was time.
  bool tick(job& j) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_tick_ < std::chrono::seconds(1))
      return false;
    j.refresh();
    const auto views = j.views();
    const auto totals = totals_of(views);
    const auto dt = std::chrono::duration<double>(now - last_tick_).count();
    const auto total = std::chrono::duration<double>(now - start_).count();
    if (tty_) {
      // Cut to the terminal's width, never wrapped: a wrapped line would not be overwritten.
      fmt::print(stderr, "\r\033[K{}",
                 cut_to_columns(progress_line(views, totals, before_, dt, total), columns()));
      std::fflush(stderr);
    } else if (log_lines_ && now - last_log_ >= std::chrono::seconds(5)) {
      say(log_level::info, progress_line(views, totals, before_, dt, total));
      last_log_ = now;
    }
    before_ = totals;
    last_tick_ = now;
    return true;
  }

private:
  // The width of the terminal on stderr less one (the last column would wrap on some terminals); 0
  // (no limit) when stderr is not a terminal.
  static std::size_t columns() {
    struct winsize ws {};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col < 2)
      return 0;
    return ws.ws_col - 1u;
  }

  bool tty_;
  bool log_lines_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_tick_ = start_;
  std::chrono::steady_clock::time_point last_log_ = start_;
  run_totals before_;
};

// Waits for the runtime to end, printing progress; the first signal shuts it down gracefully.
// The graceful stop after the first signal: every shard stops feeding, flushes and checkpoints (the
// stop_deadline of run_job bounds it by --stop-timeout).
runtime_outcome stop_gracefully(job& j, const run_plan& plan, const progress_printer& progress) {
  if (progress.tty())
    fmt::print(stderr, "\n");
  say(log_level::info,
      "stopping: every shard flushes and checkpoints ({}a second signal stops "
      "at once)",
      plan.stop_timeout.count() > 0 ? fmt::format("at most --stop-timeout {}; ", plan.stop_text)
                                    : std::string{});
  j.rt().shutdown();
  return j.rt().await(std::chrono::seconds(0));
}

// Waits for the runtime to end, printing progress; the first signal stops it gracefully. A signal
// is looked at before the runtime's outcome: a stop during the start leaves the finite runtime
// only the shards it started, which may all have ended by the time this waits.
runtime_outcome wait_for_end(job& j, const run_plan& plan, progress_printer& progress,
                             bool& stopped) {
  for (;;) {
    if (stop_requested().load()) {
      stopped = true;
      return stop_gracefully(j, plan, progress);
    }
    auto out = j.rt().await(std::chrono::milliseconds(200));
    if (out) {
      stopped = stop_requested().load();
      return out;
    }
    progress.tick(j);
  }
}

// -- the verdict: exit code and problems, from the runtime's outcome -------------------------------

struct verdict {
  int code = exit_ok;
  std::vector<std::string> problems;

  void failed(std::string why) {
    say(log_level::error, "failed: {}", why);
    problems.push_back(std::move(why));
    code = exit_failed;
  }
};

// A shard that gave up, a runtime that failed, or (a finite run not stopped on a signal) a shard
// that did not reach its end fails the run (1); else a shard stopped by bad input makes it 3.
verdict judge(const runtime_outcome& out, const std::vector<shard_view>& views,
              const local::input_problems& problems, const run_plan& plan, bool finite,
              bool stopped) {
  verdict v;
  v.problems = problems.all();
  std::vector<shard_id> unfinished;
  // A shard never started is not done: after a stop on a signal it is the rerun's (a graceful stop
  // that checkpointed every started shard, exit 0); without one the run failed.
  for (auto& view : views)
    if (view.not_started)
      unfinished.push_back(view.id);
  for (auto& s : out.shards) {
    if (s.outcome == shard_outcome::gave_up)
      v.failed(fmt::format("shard {} gave up after its restarts: {}; fix the cause and rerun (it "
                           "resumes from its checkpoint)",
                           s.id, s.reason));
    else if (s.outcome != shard_outcome::ended)
      unfinished.push_back(s.id);
  }
  if (v.code == exit_ok && !out.clean() && out.reason)
    v.failed(text_of(out.reason));
  const auto stops = problems.stops();
  if (v.code == exit_ok && finite && !stopped && !unfinished.empty() && stops.empty())
    v.failed(fmt::format("{} of {} did not finish ({}{}): see the messages above, fix the cause "
                         "and rerun (a shard resumes from its checkpoint)",
                         unfinished.size(), plural(views.size(), "shard"), unfinished.front(),
                         unfinished.size() > 1 ? ", ..." : ""));
  if (stops.empty())
    return v;
  for (auto& p : stops)
    say(log_level::error, "bad input: {}", p);
  const bool malformed = std::any_of(views.begin(), views.end(), [](const shard_view& s) {
    return s.stopped_at && dead_letter_applies(*s.stopped_at);
  });
  // A checkpoint the file no longer matches (truncated or replaced): only the store can be fixed.
  const bool checkpoint = std::any_of(views.begin(), views.end(), [](const shard_view& s) {
    return s.stopped_at && s.stopped_at->find("(checkpoint ") != std::string::npos;
  });
  say(log_level::error,
      "the shards above stopped at their bad input (everything before it is checkpointed); fix it "
      "and rerun{}{}",
      plan.on_bad_input == local::bad_input_policy::stop && malformed
        ? ", or rerun with --bad-input dead-letter to move the malformed lines aside"
        : "",
      checkpoint ? fmt::format("; a file replaced or truncated under its checkpoint is read from "
                               "its start again once its shard's row is gone from {} (or with "
                               "another --checkpoints database)",
                               plan.checkpoints.string())
                 : "");
  v.code = v.code == exit_ok ? exit_bad_input : v.code;
  return v;
}

// -- the JSON summary: a file opened before the run (a bad path fails before anything starts) ------

class json_output {
public:
  explicit json_output(std::string path) : path_(std::move(path)) {
    if (path_.empty() || path_ == "-")
      return;
    file_ = std::fopen(path_.c_str(), "w");
    if (file_ == nullptr)
      throw error{errc::io_failed,
                  fmt::format("--json {}: cannot write: {}", path_, std::strerror(errno))};
  }

  ~json_output() {
    if (file_ != nullptr)
      std::fclose(file_);
  }

  json_output(const json_output&) = delete;
  json_output& operator=(const json_output&) = delete;

  /// Writes `text` (nothing without --json); returns an error message when that failed.
  std::optional<std::string> write(const std::string& text) {
    if (path_.empty())
      return std::nullopt;
    auto* out = file_ != nullptr ? file_ : stdout;
    if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0)
      return fmt::format("cannot write the JSON summary to {}: {}",
                         file_ != nullptr ? path_ : "stdout", std::strerror(errno));
    return std::nullopt;
  }

private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Data alone on stdout: the table goes to stderr, the JSON summary where --json says.
int report(const run_config& cfg, const run_plan& plan, job& j, const runtime_outcome& out,
           double seconds, bool stopped, json_output& json) {
  j.refresh();
  const auto views = j.views();
  auto v = judge(out, views, j.problems(), plan, !cfg.follow, stopped);
  const auto dead = j.problems().dead_letters();
  if (cli_log_settings().format == log_format::json) {
    for (const auto& line : summary_messages(views, seconds, stopped, dead))
      say(log_level::info, line);
  } else {
    fmt::print(stderr, "{}", summary_table(views, seconds, stopped, dead));
  }
  if (auto failed = json.write(summary_json(views, seconds, v.code, v.problems, dead, stopped))) {
    say(log_level::error, "failed: {}", *failed);
    return v.code == exit_ok ? exit_failed : v.code;
  }
  return v.code;
}

int run_job(const run_config& cfg) {
  const auto plan = make_plan(cfg);
  // One owner per shard: claimed before anything starts, held until the run ends (an OS lock: a
  // run killed with -9 leaves nothing behind).
  const auto claims = local::shard_claims::claim(plan.stream, plan.shards);
  json_output json{plan.json};
  stop_on_signals("run");
  const stop_deadline deadline{plan.stop_timeout, plan.stop_text, "resumes from the checkpoints"};
  // The clock starts before the shards do: they work while the others are still starting.
  progress_printer progress{cfg.progress};
  job j{cfg, plan};
  // Up before the first shard starts (/healthz and a 503 /readyz during the start), and a busy
  // port fails the run before any work.
  status_server status{plan.metrics,
                       [&j] {
                         j.refresh();
                         return j.views();
                       },
                       SHARDFLOW_VERSION};
  j.start_shards();
  bool stopped = false;
  const auto out = wait_for_end(j, plan, progress, stopped);
  const auto seconds = progress.seconds();
  status.stop();
  if (progress.tty())
    fmt::print(stderr, "\n");
  return report(cfg, plan, j, out, seconds, stopped, json);
}

} // namespace

namespace {

// The stream, the flusher and the intervals.
void add_input_options(CLI::App* cmd, run_config* cfg) {
  cmd->add_option("stream", cfg->stream, "the stream directory")->required();
  cmd->add_option("--flusher", cfg->flusher,
                  "null | stdout | file:DIR | postgres:CONNINFO | kafka:BROKERS/TOPIC (default: "
                  "file:STREAM.out)");
  cmd->add_option("--checkpoints", cfg->checkpoints,
                  "SQLite checkpoint database (default: STREAM/checkpoints.db)");
  cmd->add_option("--stream-name", cfg->stream_name,
                  "the stream's name in the checkpoint database (default: the directory's name)");
  cmd->add_option("--shards", cfg->shards, "shards to run: all, or a list like 0,2,5-7")
    ->capture_default_str();
  add_job_options(cmd, cfg);
}

// File rolling, the flushers' threads.
void add_restart_options(CLI::App* cmd, run_config* cfg) {
  add_flusher_options(cmd, &cfg->flushing);
  cmd
    ->add_option("--io-threads", cfg->io_threads,
                 "file flusher: threads writing the batches of all shards; postgres flusher: "
                 "transactions written at once")
    ->check(CLI::Range(1, 1024))
    ->capture_default_str();
}

// Input policy and reporting.
void add_report_options(CLI::App* cmd, run_config* cfg) {
  cmd
    ->add_option(
      "--detached", cfg->detached,
      "run shards on threads of their own (their flushers write there, not on the I/O "
      "pool): yes, no (auto: yes for the stdout flusher with at most 64 shards, else no)")
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
  add_json_summary(cmd, cfg->json,
                   "also write the summary as JSON to FILE (- or no FILE: stdout, unless the "
                   "flusher is stdout)");
  cmd->add_option(
    "--metrics", cfg->metrics,
    "serve HTTP on HOST:PORT (loopback unless --allow-remote): Prometheus metrics at /metrics, "
    "/healthz (alive), /readyz (every shard started, none gave up)");
  cmd->add_flag("--allow-remote", cfg->allow_remote, "allow a non-loopback --metrics address");
  cmd->add_option("--progress", cfg->progress, "auto | tty (a live line) | log | off")
    ->check(CLI::IsMember({"auto", "tty", "log", "off"}))
    ->capture_default_str();
}

} // namespace

std::unique_ptr<caf::actor_system_config> system_config_of(const job_options& opts) {
  auto sys_cfg = std::make_unique<caf::actor_system_config>();
  configure(*sys_cfg);
  sys_cfg->set("scheduler.max-threads", opts.threads);
  sys_cfg->set("scheduler.max-throughput", opts.max_throughput);
  sys_cfg->set("work-stealing.moderate-poll-attempts", opts.idle_polls);
  sys_cfg->set("logger.console-verbosity", caf::atom("quiet"));
  sys_cfg->set("logger.file-verbosity", caf::atom("quiet"));
  return sys_cfg;
}

shard_group_config plan_job_shards(const job_options& opts) {
  shard_group_config g;
  g.shard.batch.flush_interval = duration_option("--flush-interval", opts.flush_interval);
  g.shard.batch.checkpoint_interval = duration_option("--checkpoint-interval",
                                                      opts.checkpoint_interval);
  g.shard.batch.watchdog_timeout = duration_option("--watchdog", opts.watchdog);
  g.shard.heartbeat_interval = duration_option("--heartbeat-interval", opts.heartbeat_interval);
  // Records wait up to the flush interval, then for the heartbeat that flushes them, and a flusher
  // that writes in the background returns their tokens at the heartbeat after that: a watchdog no
  // longer than this would take a healthy shard for a stuck one.
  const auto& b = g.shard.batch;
  const auto wait = b.flush_interval + 2 * g.shard.heartbeat_interval;
  if (b.watchdog_timeout.count() > 0 && b.watchdog_timeout <= wait)
    usage(fmt::format("--watchdog {} must be longer than {} ms (--flush-interval {} plus twice "
                      "--heartbeat-interval {}): records wait up to the flush interval, then for "
                      "the heartbeat that flushes them, and a flusher that writes in the background "
                      "returns them at the next one, so a healthy shard would look stuck",
                      opts.watchdog, wait.count(), opts.flush_interval, opts.heartbeat_interval));
  const auto period = duration_option("--period", opts.period);
  if (period < std::chrono::seconds(1))
    usage("--period must be at least 1s");
  g.intensity = opts.intensity;
  g.period = std::chrono::duration_cast<std::chrono::seconds>(period);
  g.backoff.min = duration_option("--backoff-min", opts.backoff_min);
  g.backoff.max = duration_option("--backoff-max", opts.backoff_max);
  if (g.backoff.min > g.backoff.max)
    usage(fmt::format("--backoff-min {} is longer than --backoff-max {}", opts.backoff_min,
                      opts.backoff_max));
  // Restarts at least `max` (and up to 1.2 max, with jitter) apart must fit `intensity` times into
  // the period, or a shard that keeps failing would be restarted for ever and the job never end.
  if (opts.intensity > 0 && g.backoff.min.count() > 0
      && g.backoff.max * 12 / 10 * opts.intensity >= period)
    usage(
      fmt::format("--backoff-max {} with --intensity {} and --period {}: {} restarts cannot fit "
                  "into the period, so a shard that keeps failing would never give up; lower "
                  "--backoff-max or raise --period",
                  opts.backoff_max, opts.intensity, opts.period, opts.intensity));
  return g;
}

void add_job_options(CLI::App* cmd, job_options* opts) {
  cmd->add_option("--batch-size", opts->batch_size, "records per flusher batch")
    ->check(CLI::Range(1, 1 << 24))
    ->capture_default_str();
  add_duration(cmd, "--flush-interval", opts->flush_interval, "flush at least this often")
    ->capture_default_str();
  add_duration(cmd, "--checkpoint-interval", opts->checkpoint_interval,
               "checkpoint at most this often")
    ->capture_default_str();
  add_duration(cmd, "--heartbeat-interval", opts->heartbeat_interval,
               "how often quiet shards flush and checkpoint")
    ->capture_default_str();
  add_duration(cmd, "--watchdog", opts->watchdog,
               "restart a shard whose records make no progress for this long; one waiting for "
               "input is idle, not stuck (0: off)")
    ->capture_default_str();
  cmd->add_option("--intensity", opts->intensity, "restarts allowed per period before giving up")
    ->check(CLI::Range(0, 1'000'000))
    ->capture_default_str();
  add_duration(cmd, "--period", opts->period, "the restart intensity window")
    ->capture_default_str();
  add_duration(cmd, "--backoff-min", opts->backoff_min, "first delay before restarting a shard")
    ->capture_default_str();
  add_duration(cmd, "--backoff-max", opts->backoff_max, "longest delay before restarting a shard")
    ->capture_default_str();
  add_duration(cmd, "--stop-timeout", opts->stop_timeout,
               "after a signal, stop at once (exit 130) if the graceful stop takes longer (0: "
               "no limit)")
    ->capture_default_str();
  cmd
    ->add_option("--threads", opts->threads,
                 "CAF worker threads (default: twice the cores, at least 8: a shard blocked in a "
                 "flush holds its thread)")
    ->check(CLI::Range(1, 1024))
    ->capture_default_str();
}

void add_run_command(CLI::App& app, int& exit_code) {
  auto cfg = std::make_shared<run_config>();
  auto* cmd = app.add_subcommand(
    "run", "Process a local stream: one supervised shard actor per shard, flushers, checkpoints");
  add_input_options(cmd, cfg.get());
  add_restart_options(cmd, cfg.get());
  add_report_options(cmd, cfg.get());
  cmd->callback([cfg, &exit_code] { exit_code = guarded("run", [&] { return run_job(*cfg); }); });
}

} // namespace shardflow::cli
