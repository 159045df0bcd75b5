#include "apps/shardflow/status_server.hpp"

#include <utility>

#include <fmt/format.h>
#include <httplib.h>

#include <shardflow/core/error.hpp>

namespace shardflow::cli {

status_server::status_server(const listen_address& at,
                             std::function<std::vector<shard_view>()> views, std::string version) {
  if (at.port == 0)
    return;
  http_ = std::make_unique<httplib::Server>();
  http_->Get("/metrics", [views, version](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(views()) + build_info_text(version),
                    "text/plain; version=0.0.4");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http_->Get("/readyz", [views](const httplib::Request&, httplib::Response& res) {
    const auto r = readiness_of(views());
    res.status = r.ready ? 200 : 503;
    res.set_content(r.why + "\n", "text/plain");
  });
  if (!http_->bind_to_port(at.host, at.port))
    throw error{errc::io_failed,
                fmt::format("--metrics: cannot listen on {}:{}", at.host, at.port)};
  thread_ = std::thread{[this] { http_->listen_after_bind(); }};
}

status_server::~status_server() {
  stop();
}

void status_server::stop() {
  if (!thread_.joinable())
    return;
  http_->stop();
  thread_.join();
}

} // namespace shardflow::cli
