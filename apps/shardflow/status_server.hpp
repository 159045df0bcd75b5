// apps/shardflow/status_server.hpp - what `--metrics HOST:PORT` serves over HTTP (`run`, `mld`,
// `mld-server`), on a thread of its own: /metrics, /healthz and /readyz.
//
// - /metrics: the command's Prometheus text (run: run_report.hpp's prometheus_text of the shards;
//   mld: mld_metrics.hpp) and `shardflow_build_info{version="..."} 1`.
// - /healthz: 200 "ok" for as long as the process serves at all (liveness).
// - /readyz: 200 when the command says it is ready, 503 otherwise; the body is one short line
//   saying which (run: every shard started and none gave up, run_report.hpp's readiness_of).
//
// Every request takes a fresh snapshot (the functions are called on the server's thread; they must
// be thread-safe). Nothing is served when the address's port is 0.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/shardflow/options.hpp"
#include "apps/shardflow/run_report.hpp"

namespace httplib {
class Server;
} // namespace httplib

namespace shardflow::cli {

/// Returns the --metrics address `text` (HOST:PORT), which must be loopback unless `allow_remote`.
/// @throws CLI::ValidationError (a usage error) naming --metrics otherwise.
listen_address metrics_address_of(const std::string& text, bool allow_remote);

/// The HTTP endpoints of a command; see the file comment.
class status_server {
public:
  /// Listens on `at` (nothing when its port is 0) and serves `metrics()` (the build info is
  /// added) and `ready()`.
  /// @throws shardflow::error (errc::io_failed) naming the address when it cannot listen.
  status_server(const listen_address& at, std::function<std::string()> metrics,
                std::function<readiness()> ready, std::string version);

  /// Serves the shards of a run that `views` returns (prometheus_text, readiness_of).
  status_server(const listen_address& at, std::function<std::vector<shard_view>()> views,
                std::string version);

  ~status_server();

  status_server(const status_server&) = delete;
  status_server& operator=(const status_server&) = delete;

  /// Stops serving (the destructor does it otherwise).
  void stop();

private:
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

} // namespace shardflow::cli
