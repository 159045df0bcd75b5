#include "apps/shardflow/status_server.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <sys/socket.h>

#include <fmt/format.h>
#include <httplib.h>

#include "apps/shardflow/guarded.hpp"
#include <shardflow/core/error.hpp>

namespace shardflow::cli {

listen_address metrics_address_of(const std::string& text, bool allow_remote) {
  auto at = checked(parse_host_port("--metrics", text));
  if (!is_loopback_host(at.host) && !allow_remote)
    usage(fmt::format("--metrics {}: not a loopback address; the metrics are served to whoever "
                      "connects: use 127.0.0.1 or ::1, or pass --allow-remote if a firewall "
                      "restricts who can reach it",
                      text));
  return at;
}

status_server::status_server(const listen_address& at,
                             std::function<std::vector<shard_view>()> views, std::string version)
  : status_server(
      at, [views] { return prometheus_text(views()); },
      [views] { return readiness_of(views()); }, std::move(version)) {
  // nop
}

status_server::status_server(const listen_address& at, std::function<std::string()> metrics,
                             std::function<readiness()> ready, std::string version) {
  if (at.port == 0)
    return;
  http_ = std::make_unique<httplib::Server>();
  http_->Get("/metrics", [metrics, version](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics() + build_info_text(version), "text/plain; version=0.0.4");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http_->Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    const auto r = ready();
    res.status = r.ready ? 200 : 503;
    res.set_content(r.why + "\n", "text/plain");
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second process (another
  // run with the same --metrics) bound the same port and took every other scrape.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  errno = 0;
  if (!http_->bind_to_port(at.host, at.port))
    throw error{errc::io_failed, fmt::format("--metrics: cannot listen on {}:{}{}", at.host,
                                             at.port, errno ? ": " + std::string{std::strerror(errno)}
                                                            : std::string{})};
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
