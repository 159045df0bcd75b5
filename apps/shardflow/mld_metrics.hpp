// apps/shardflow/mld_metrics.hpp - what `shardflow mld --metrics` and `mld-server --metrics` serve
// at /metrics and /readyz (through status_server.hpp, the one HTTP mechanism `run` uses too).
//
// Read from the HTTP server's thread while the sessions run: the shard meters (kcl/mld_worker.hpp)
// and the server's counters are relaxed atomics, so each value is exact on its own and the text is
// not one consistent snapshot. Per shard (label shard="..."): records, bytes, durable records,
// flushes and flush time (the same names as `run`'s), checkpoints, checkpoint errors by kind
// (label kind="ThrottlingException", ...), the last millisBehindLatest, restarts (sessions for the
// shard after its first: the daemon restarted its worker); for mld-server also its sessions (all,
// failed, active) and the connections it refused.
#pragma once

#include <string>

#include "apps/shardflow/run_report.hpp"
#include <shardflow/kcl/mld_server.hpp>
#include <shardflow/kcl/mld_worker.hpp>

namespace shardflow::cli {

/// Returns the Prometheus text of `meters`, and of `server`'s sessions when it is set.
std::string mld_prometheus_text(const mld::worker_meters& meters,
                                const mld::server_stats* server);

/// Readiness of `shardflow mld`: ready once the daemon's initialize named the shard.
readiness mld_worker_readiness(const mld::worker_meters& meters);

} // namespace shardflow::cli
