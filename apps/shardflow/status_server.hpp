// apps/shardflow/status_server.hpp - what `shardflow run --metrics HOST:PORT` serves over HTTP, on a
// thread of its own: /metrics, /healthz and /readyz.
//
// - /metrics: the Prometheus text of the shards (run_report.hpp's prometheus_text) and
//   `shardflow_build_info{version="..."} 1`.
// - /healthz: 200 "ok" for as long as the process serves at all (liveness).
// - /readyz: 200 once every shard started and none gave up, 503 otherwise; the body is one short
//   line saying which (run_report.hpp's readiness_of).
//
// Every request takes a fresh snapshot of the shards from `views` (called on the server's thread;
// it must be thread-safe). Nothing is served when the address's port is 0.
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

/// The HTTP endpoints of a run; see the file comment.
class status_server {
public:
  /// Listens on `at` (nothing when its port is 0) and serves the shards `views` returns.
  /// @throws shardflow::error (errc::io_failed) naming the address when it cannot listen.
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
