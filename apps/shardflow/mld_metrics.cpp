#include "apps/shardflow/mld_metrics.hpp"

#include <fmt/format.h>

namespace shardflow::cli {

namespace {

// A label value as Prometheus reads it: backslash, quote and newline escaped.
std::string label(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

} // namespace

std::string mld_prometheus_text(const mld::worker_meters& meters,
                                const mld::server_stats* server) {
  using shard_row = std::pair<std::string, std::shared_ptr<mld::shard_meter>>;
  const auto shards = meters.all();
  std::string out;
  const auto per_shard = [&](const char* name, const char* type, const char* help, auto value) {
    family(out, name, type, help);
    for (const shard_row& s : shards)
      out += fmt::format("{}{{shard=\"{}\"}} {}\n", name, label(s.first), value(*s.second));
  };
  per_shard("shardflow_records_total", "counter",
            "Records handed to the flusher (redelivered ones count again).",
            [](const mld::shard_meter& m) { return m.flushing->records.load(); });
  per_shard("shardflow_bytes_total", "counter", "Data bytes handed to the flusher.",
            [](const mld::shard_meter& m) { return m.flushing->bytes.load(); });
  per_shard("shardflow_durable_records_total", "counter", "Records the flusher made durable.",
            [](const mld::shard_meter& m) { return m.flushing->durable.load(); });
  per_shard("shardflow_flushes_total", "counter", "Flushes.",
            [](const mld::shard_meter& m) { return m.flushing->flushes.load(); });
  per_shard("shardflow_flush_seconds_total", "counter", "Time spent flushing (sum).",
            [](const mld::shard_meter& m) { return m.flushing->flush_nanos.load() / 1e9; });
  per_shard("shardflow_mld_checkpoints_total", "counter", "Checkpoints the daemon confirmed.",
            [](const mld::shard_meter& m) { return m.checkpoints.load(); });
  family(out, "shardflow_mld_checkpoint_errors_total", "counter",
         "Checkpoint replies with an error, by kind (other: any not named).");
  for (const shard_row& s : shards)
    for (std::size_t k = 0; k < mld::checkpoint_error_kinds.size(); ++k)
      out += fmt::format("shardflow_mld_checkpoint_errors_total{{shard=\"{}\",kind=\"{}\"}} {}\n",
                         label(s.first), mld::checkpoint_error_kinds[k],
                         s.second->checkpoint_errors[k].load());
  family(out, "shardflow_mld_millis_behind_latest", "gauge",
         "The last millisBehindLatest the daemon sent (shards that sent one).");
  for (const shard_row& s : shards)
    if (const auto behind = s.second->millis_behind_latest.load(); behind >= 0)
      out += fmt::format("shardflow_mld_millis_behind_latest{{shard=\"{}\"}} {}\n",
                         label(s.first), behind);
  per_shard("shardflow_restarts_total", "counter",
            "Sessions for the shard after its first (the daemon restarted its worker).",
            [](const mld::shard_meter& m) {
              const auto n = m.sessions.load();
              return n > 0 ? n - 1 : 0;
            });
  if (!server)
    return out;
  struct count {
    const char* name;
    const char* help;
    std::uint64_t value;
  };
  const count counts[] = {
    {"shardflow_mld_sessions_total", "mld-server: sessions (connections) served.",
     server->sessions.load()},
    {"shardflow_mld_sessions_failed_total", "mld-server: sessions that failed.",
     server->failed.load()},
    {"shardflow_mld_connections_refused_total",
     "mld-server: connections reset at once (--max-connections).", server->refused.load()},
  };
  for (const auto& c : counts) {
    family(out, c.name, "counter", c.help);
    out += fmt::format("{} {}\n", c.name, c.value);
  }
  family(out, "shardflow_mld_sessions_active", "gauge", "mld-server: sessions being served.");
  out += fmt::format("shardflow_mld_sessions_active {}\n", server->active.load());
  return out;
}

readiness mld_worker_readiness(const mld::worker_meters& meters) {
  const auto shards = meters.all();
  if (shards.empty())
    return {false, "waiting for the daemon's initialize"};
  return {true, "serving " + shards.front().first};
}

} // namespace shardflow::cli
