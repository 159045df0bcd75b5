// An integration test: the server runs on CAF's threads and real sockets (sessions block on them, so
// the deterministic scheduler cannot drive it). The daemon's side is this test, over TCP.
#include "adapters/mld_server.hpp"

#include <atomic>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "actors/messages.hpp"
#include "tests/support/recording_flusher.hpp"

using namespace shardflow;

namespace {

// A connection to the server: writes lines, reads what comes back until EOF.
class daemon_connection {
public:
  explicit daemon_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    // Liveness only: nothing here should take more than a few milliseconds.
    timeval limit{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }

  ~daemon_connection() {
    ::close(fd_);
  }

  void send(const std::string& line) {
    const auto out = line + "\n";
    REQUIRE(::write(fd_, out.data(), out.size()) == static_cast<ssize_t>(out.size()));
  }

  // Everything the server sends until it closes the connection; `timed_out` if it never does.
  std::string until_closed(bool& timed_out) {
    std::string got;
    char buf[4096];
    for (;;) {
      const auto n = ::read(fd_, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      timed_out = n < 0;
      return got;
    }
  }

private:
  int fd_;
};

} // namespace

SCENARIO("a session whose shard's supervisor gives up fails at once and closes its connection",
         "[adapters][mld]") {
  caf::actor_system_config cfg;
  configure(cfg);
  caf::actor_system sys{cfg};
  auto script = std::make_shared<testing::flusher_script>();
  script->fail_add = true; // every incarnation fails at its first record
  mld::server_config sc;
  sc.intensity = 0;                            // the first crash is one too many
  sc.restart_wait = std::chrono::seconds(60); // waiting for a comeback would outlast the read
  sc.worker.make_flusher = testing::recording_flusher::factory(script);
  sc.worker.log = [](const std::string&) {};
  mld::server srv{sys, sc};
  std::atomic<bool> stop{false};
  std::thread serving{[&] { srv.serve(stop); }};
  {
    daemon_connection daemon{srv.port()};
    daemon.send(R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})");
    daemon.send(R"({"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"1","subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0})");
    bool timed_out = false;
    const auto got = daemon.until_closed(timed_out);
    CHECK_FALSE(timed_out);
    // The initialize was answered; the batch never was (the daemon will restart the lease).
    CHECK(got == "{\"action\":\"status\",\"responseFor\":\"initialize\"}\n");
  }
  stop = true;
  serving.join();
  CHECK(srv.stats().sessions == 1);
}
