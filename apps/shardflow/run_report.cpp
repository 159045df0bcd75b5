#include "apps/shardflow/run_report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "apps/shardflow/cli_log.hpp"
#include <shardflow/flushers/record_line.hpp>

namespace shardflow::cli {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format(u == 0 ? "{:.0f} {}" : "{:.1f} {}", b, units[u]);
}

std::string human_count(double n) {
  if (n >= 1e9)
    return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6)
    return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3)
    return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string json_string(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

} // namespace

void shard_view::update(const shard_meters& m, std::chrono::steady_clock::time_point now) {
  const auto position = m.acked_position.load(std::memory_order_relaxed);
  std::optional<std::uint64_t> cp;
  if (position != shard_meters::no_position)
    cp = position;
  if (cp != checkpoint || last_checkpoint_change == std::chrono::steady_clock::time_point{})
    last_checkpoint_change = now;
  checkpoint = cp;
  ended = m.acked_end.load(std::memory_order_relaxed);
  restart_count = m.restarts.load(std::memory_order_relaxed);
  generation = m.generation.load(std::memory_order_relaxed);
  outcome = m.outcome.load(std::memory_order_relaxed);
}

run_totals totals_of(const std::vector<shard_view>& shards) {
  run_totals t;
  for (auto& s : shards) {
    t.records += s.meter->records.load(std::memory_order_relaxed);
    t.bytes += s.meter->bytes.load(std::memory_order_relaxed);
    t.flushes += s.meter->flushes.load(std::memory_order_relaxed);
    t.flush_nanos += s.meter->flush_nanos.load(std::memory_order_relaxed);
    t.restarts += s.restarts();
    t.lag_bytes += s.lag_bytes();
    t.ended += s.at_end() ? 1 : 0;
    t.not_started += s.not_started ? 1 : 0;
  }
  return t;
}

std::string progress_line(const std::vector<shard_view>& shards, const run_totals& now,
                          const run_totals& before, double dt, double total_seconds) {
  const double rate = dt > 0 ? (now.records - before.records) / dt : 0;
  const double mbs = dt > 0 ? (now.bytes - before.bytes) / dt / (1 << 20) : 0;
  std::string lag;
  if (shards.size() <= 48) {
    // One mark per shard: how much of its input is still after its checkpoint.
    static const char* marks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                  "\u2585", "\u2586", "\u2587", "\u2588"};
    for (auto& s : shards) {
      if (s.at_end()) {
        lag += "\u2713";
        continue;
      }
      const double frac = s.input_bytes ? double(s.lag_bytes()) / double(s.input_bytes) : 0.0;
      lag += marks[std::min(7, static_cast<int>(frac * 8))];
    }
  } else {
    std::uint64_t worst = 0;
    for (auto& s : shards)
      worst = std::max(worst, s.lag_bytes());
    lag = fmt::format("max {}", human_bytes(double(worst)));
  }
  return fmt::format("[{:6.1f}s] {} {}  {}/s  {:.1f} MiB/s  lag {} ({})  done {}/{}  restarts {}",
                     total_seconds, human_count(double(now.records)),
                     now.records == 1 ? "record" : "records", human_count(rate), mbs, lag,
                     human_bytes(double(now.lag_bytes)), now.ended, shards.size(), now.restarts);
}

std::string state_of(const shard_view& s) {
  if (s.not_started)
    return "not started";
  if (s.stopped_at)
    return "stopped at " + *s.stopped_at;
  if (s.ended)
    return "ended";
  switch (s.outcome) {
    case shard_outcome::gave_up:
      return "gave up";
    case shard_outcome::stopped:
      return "stopped";
    default:
      return to_string(s.outcome);
  }
}

namespace {

// The summary's last line: totals, ends, stops (no newline).
std::string totals_sentence(const std::vector<shard_view>& shards, double seconds, bool stopped,
                            std::uint64_t dead_letters) {
  std::size_t stops = 0;
  for (auto& s : shards)
    stops += s.stopped_at ? 1 : 0;
  const auto t = totals_of(shards);
  const double avg_flush_ms = t.flushes ? t.flush_nanos / 1e6 / t.flushes : 0;
  return fmt::format(
    "{} ({}) in {:.2f} s: {}/s, {:.1f} MiB/s; {} (avg {:.2f} ms); {}; {} of {} at their "
    "end{}{}{}{}{}",
    plural(t.records, "record"), human_bytes(double(t.bytes)), seconds,
    human_count(seconds > 0 ? t.records / seconds : 0),
    seconds > 0 ? t.bytes / seconds / (1 << 20) : 0.0, plural(t.flushes, "flush", "flushes"),
    avg_flush_ms, plural(t.restarts, "restart"), t.ended, plural(shards.size(), "shard"),
    // A rerun of a finished stream: say why nothing was processed.
    t.records == 0 && !shards.empty() && t.ended == shards.size()
      ? "; nothing after their checkpoints (the stream was processed already)"
      : "",
    stops ? fmt::format("; {} stopped at bad input", stops) : std::string{},
    t.not_started ? fmt::format("; {} not started", t.not_started) : std::string{},
    dead_letters ? fmt::format("; {}", plural(dead_letters, "dead letter")) : std::string{},
    !stopped            ? ""
    : t.not_started > 0 ? "; stopped on a signal, every started shard checkpointed (a rerun "
                          "processes the rest)"
                        : "; stopped on a signal, every shard checkpointed");
}

std::string checkpoint_text(const shard_view& s) {
  return s.checkpoint ? std::to_string(*s.checkpoint) : std::string{"-"};
}

} // namespace

std::string summary_table(const std::vector<shard_view>& shards, double seconds, bool stopped,
                          std::uint64_t dead_letters) {
  std::string out = fmt::format("\n{:<14} {:>12} {:>12} {:>9} {:>16} {:>12} {:>8}  {}\n", "shard",
                                "records", "bytes", "flushes", "checkpoint", "lag", "restarts",
                                "state");
  for (auto& s : shards)
    out += fmt::format("{:<14} {:>12} {:>12} {:>9} {:>16} {:>12} {:>8}  {}\n", s.id,
                       s.meter->records.load(), human_bytes(double(s.meter->bytes.load())),
                       s.meter->flushes.load(), checkpoint_text(s),
                       human_bytes(double(s.lag_bytes())), s.restarts(), state_of(s));
  return out + "\n" + totals_sentence(shards, seconds, stopped, dead_letters) + "\n";
}

std::vector<std::string> summary_messages(const std::vector<shard_view>& shards, double seconds,
                                          bool stopped, std::uint64_t dead_letters) {
  std::vector<std::string> out;
  for (auto& s : shards)
    out.push_back(fmt::format("{}: {} ({}), {}, checkpoint {}, lag {}, {}; {}", s.id,
                              plural(s.meter->records.load(), "record"),
                              human_bytes(double(s.meter->bytes.load())),
                              plural(s.meter->flushes.load(), "flush", "flushes"),
                              checkpoint_text(s), human_bytes(double(s.lag_bytes())),
                              plural(s.restarts(), "restart"), state_of(s)));
  out.push_back(totals_sentence(shards, seconds, stopped, dead_letters));
  return out;
}

std::string summary_json(const std::vector<shard_view>& shards, double seconds, int exit_code,
                         const std::vector<std::string>& problems, std::uint64_t dead_letters,
                         bool stopped) {
  const auto t = totals_of(shards);
  std::string out = fmt::format(
    "{{\"exit_code\":{},\"stopped_on_signal\":{},\"seconds\":{:.3f},\"records\":{},\"bytes\":{},"
    "\"flushes\":{},\"restarts\":{},\"dead_letters\":{},\"lag_bytes\":{},\"ended\":{},"
    "\"not_started\":{},\"shards\":[",
    exit_code, stopped ? "true" : "false", seconds, t.records, t.bytes, t.flushes, t.restarts,
    dead_letters, t.lag_bytes, t.ended, t.not_started);
  for (std::size_t i = 0; i < shards.size(); ++i) {
    auto& s = shards[i];
    out += fmt::format("{}{{\"id\":{},\"records\":{},\"bytes\":{},\"flushes\":{},\"checkpoint\":{},"
                       "\"ended\":{},\"outcome\":\"{}\",\"stopped_at\":{},\"lag_bytes\":{},"
                       "\"restarts\":{}}}",
                       i ? "," : "", json_string(s.id), s.meter->records.load(),
                       s.meter->bytes.load(), s.meter->flushes.load(),
                       s.checkpoint ? std::to_string(*s.checkpoint) : std::string{"null"},
                       s.at_end() ? "true" : "false",
                       s.not_started ? std::string{"not_started"} : to_string(s.outcome),
                       s.stopped_at ? json_string(*s.stopped_at) : std::string{"null"},
                       s.lag_bytes(), s.restarts());
  }
  out += "],\"problems\":[";
  for (std::size_t i = 0; i < problems.size(); ++i)
    out += (i ? "," : "") + json_string(problems[i]);
  out += "]}\n";
  return out;
}

std::string prometheus_text(const std::vector<shard_view>& shards) {
  struct metric {
    const char* name;
    const char* type;
    const char* help;
  };
  const metric metrics[] = {
    {"shardflow_records_total", "counter", "Records handed to the flusher (replays count again)."},
    {"shardflow_bytes_total", "counter", "Data bytes handed to the flusher."},
    {"shardflow_durable_records_total", "counter", "Records the flusher made durable."},
    {"shardflow_flushes_total", "counter", "Flushes."},
    {"shardflow_flush_seconds_total", "counter", "Time spent flushing (sum)."},
    {"shardflow_checkpoint_offset_bytes", "gauge", "Byte offset of the last checkpointed record."},
    {"shardflow_checkpoint_lag_bytes", "gauge", "Input bytes after the checkpoint."},
    {"shardflow_checkpoint_age_seconds", "gauge", "Seconds since the checkpoint last moved."},
    {"shardflow_restarts_total", "counter", "Shard restarts in this run."},
  };
  const auto now = std::chrono::steady_clock::now();
  std::string out;
  for (std::size_t m = 0; m < std::size(metrics); ++m) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", metrics[m].name, metrics[m].help,
                       metrics[m].name, metrics[m].type);
    for (auto& s : shards) {
      double v = 0;
      switch (m) {
        case 0:
          v = double(s.meter->records.load());
          break;
        case 1:
          v = double(s.meter->bytes.load());
          break;
        case 2:
          v = double(s.meter->durable.load());
          break;
        case 3:
          v = double(s.meter->flushes.load());
          break;
        case 4:
          v = s.meter->flush_nanos.load() / 1e9;
          break;
        case 5:
          v = s.checkpoint ? double(*s.checkpoint) : 0;
          break;
        case 6:
          v = double(s.lag_bytes());
          break;
        case 7:
          v = std::chrono::duration<double>(now - s.last_checkpoint_change).count();
          break;
        case 8:
          v = double(s.restarts());
          break;
      }
      out += fmt::format("{}{{shard=\"{}\"}} {}\n", metrics[m].name, s.id, v);
    }
  }
  return out;
}

std::string build_info_text(const std::string& version) {
  std::string out = "# HELP shardflow_build_info The shardflow build: its version.\n"
                    "# TYPE shardflow_build_info gauge\n"
                    "shardflow_build_info{version=";
  append_json_string(out, version); // a Prometheus label value is escaped as a JSON string is
  out += "} 1\n";
  return out;
}

readiness readiness_of(const std::vector<shard_view>& shards) {
  std::size_t started = 0;
  for (auto& s : shards) {
    if (s.outcome == shard_outcome::gave_up)
      return {false, fmt::format("not ready: shard {} gave up after its restarts", s.id)};
    if (s.generation > 0)
      ++started;
  }
  if (started < shards.size())
    return {false, fmt::format("not ready: {} of {} shards started", started, shards.size())};
  return {true, fmt::format("ready: {} started", plural(shards.size(), "shard"))};
}

bool dead_letter_applies(const std::string& where) {
  // "FILE:LINE (reason)": a line is to blame; "FILE (reason)": the file as a whole. The reason may
  // hold parentheses of its own, so the first " (" after ":DIGITS" is the one.
  for (auto open = where.find(" ("); open != std::string::npos; open = where.find(" (", open + 1)) {
    auto digits = open;
    while (digits > 0 && where[digits - 1] >= '0' && where[digits - 1] <= '9')
      --digits;
    if (digits == open || digits == 0 || where[digits - 1] != ':')
      continue;
    return where.compare(open, std::string::npos, " (the file ends in the middle of a line)") != 0;
  }
  return false;
}

std::string cut_to_columns(const std::string& line, std::size_t columns) {
  if (columns == 0)
    return line;
  std::size_t seen = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto byte = static_cast<unsigned char>(line[i]);
    if ((byte & 0xC0) == 0x80) // a continuation byte: part of the character before
      continue;
    if (seen++ == columns) {
      // Whole fields (two spaces apart in a progress line) rather than a field cut mid-word.
      const auto gap = line.rfind("  ", i - 1);
      return line.substr(0, gap != std::string::npos && gap > 0 ? gap : i);
    }
  }
  return line;
}

} // namespace shardflow::cli
