// tests/postgres/commit_cutter.hpp - a TCP proxy in front of the test server that, once armed,
// lets the end of a transaction through to the server (a COMMIT, or the CopyDone message that ends
// a COPY outside a transaction block), waits for the server's answer, and then cuts both
// connections without passing the answer on: the client's commit has happened but its outcome is
// unknown to it (the lost-COMMIT case). Everything else is relayed as it is. Text COPY only (its
// data holds no NUL byte, so CopyDone's bytes cannot appear inside a row).
//
// Loopback only (127.0.0.1, a free port). One thread accepts, one relays each connection; every
// wait is a poll with a 100 ms timeout that also checks `stop_`, and the destructor joins them all.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace shardflow::testing {

class commit_cutter {
public:
  explicit commit_cutter(int server_port) : server_port_(server_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    threads_.emplace_back([this] { accept_loop(); });
  }

  ~commit_cutter() {
    stop_ = true;
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> guard{mu_};
      threads.swap(threads_);
    }
    for (auto& t : threads)
      t.join();
    std::lock_guard<std::mutex> guard{mu_};
    for (auto& t : threads_)
      t.join();
    ::close(listen_fd_);
  }

  commit_cutter(const commit_cutter&) = delete;
  commit_cutter& operator=(const commit_cutter&) = delete;

  /// Returns the port to connect to.
  int port() const noexcept {
    return port_;
  }

  /// Cuts the connection after the next COMMIT has been answered by the server.
  void arm() {
    armed_ = true;
  }

  /// Returns how many COMMITs were cut.
  int cuts() const noexcept {
    return cuts_;
  }

private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0)
        continue;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(server_port_));
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        if (server >= 0)
          ::close(server);
        continue;
      }
      std::lock_guard<std::mutex> guard{mu_};
      threads_.emplace_back([this, client, server] { relay(client, server); });
    }
  }

  void relay(int client, int server) {
    char buf[65536];
    bool open = true;
    while (open && !stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0)
        continue;
      for (int i = 0; i < 2 && open; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        const auto n = ::read(p[i].fd, buf, sizeof buf);
        if (n <= 0) {
          open = false;
          break;
        }
        const int to = i == 0 ? server : client;
        const std::string_view chunk{buf, static_cast<std::size_t>(n)};
        const bool commit = i == 0 && armed_
                            && (chunk.find("COMMIT") != std::string_view::npos
                                || chunk.find(std::string_view{"c\0\0\0\4", 5})
                                     != std::string_view::npos);
        if (!send_all(to, buf, static_cast<std::size_t>(n))) {
          open = false;
          break;
        }
        if (commit && await_answer(server)) {
          armed_ = false;
          ++cuts_;
          open = false;
        }
      }
    }
    ::close(client);
    ::close(server);
  }

  // Waits (at most 10 s) for the server's answer to the COMMIT and drops it.
  bool await_answer(int server) {
    char buf[4096];
    for (int i = 0; i < 100 && !stop_; ++i) {
      pollfd p{server, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0)
        return ::read(server, buf, sizeof buf) > 0;
    }
    return false;
  }

  static bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      const auto w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0)
        return false;
      data += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  int server_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> armed_{false};
  std::atomic<int> cuts_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

} // namespace shardflow::testing
