// tests/postgres/pg_server.hpp - a real PostgreSQL 15 server for a test: initdb in a fresh
// temporary directory, pg_ctl start on 127.0.0.1 and a free port (and a Unix socket in the
// directory), password authentication (user "shardflow", password "secret"); stopped by its PID.
//
// initdb refuses to run as root, so under root the server's commands run as the `postgres` user
// (runuser) and the directory belongs to it. Every wait is bounded (pg_ctl -t, a deadline on the
// PID's exit).
#pragma once

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

namespace shardflow::testing {

inline const char* pg_bin = "/usr/lib/postgresql/15/bin";

class pg_server {
public:
  pg_server() {
    char tmpl[] = "/tmp/shardflow-pg-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      REQUIRE(pw != nullptr);
      REQUIRE(::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) == 0);
      as_ = "runuser -u postgres -- ";
    }
    std::ofstream{dir_ / "pw"} << "secret\n";
    run(fmt::format("{}/initdb -D {}/data -U shardflow --auth=scram-sha-256 --pwfile={}/pw -N -E "
                    "UTF8 --locale=C > {}/initdb.log 2>&1",
                    pg_bin, dir_.string(), dir_.string(), dir_.string()));
    start();
  }

  ~pg_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  pg_server(const pg_server&) = delete;
  pg_server& operator=(const pg_server&) = delete;

  /// Starts the server (on the port it had, if it ran before); waits until it accepts connections.
  void start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (port_ == 0 || attempt > 0)
        port_ = free_port();
      const auto cmd = fmt::format(
        "{}{}/pg_ctl -D {}/data -l {}/server.log -w -t 30 -o \"-c listen_addresses=127.0.0.1 -c "
        "port={} -c unix_socket_directories={} -c fsync=off\" start > /dev/null 2>&1",
        as_, pg_bin, dir_.string(), dir_.string(), port_, dir_.string());
      if (std::system(cmd.c_str()) == 0) {
        std::ifstream pidfile{dir_ / "data" / "postmaster.pid"};
        pidfile >> pid_;
        REQUIRE(pid_ > 0);
        return;
      }
    }
    FAIL("cannot start PostgreSQL; see " << (dir_ / "server.log").string());
  }

  /// Stops the server (fast shutdown: SIGINT to its PID) and waits (at most 30 s) until it exited.
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGINT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (::kill(pid_, 0) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20)); // polling the PID's exit
    if (::kill(pid_, 0) == 0)
      ::kill(pid_, SIGKILL);
    pid_ = 0;
  }

  /// Returns a libpq connection string for database `postgres`.
  std::string conninfo(const std::string& password = "secret") const {
    return fmt::format("host=127.0.0.1 port={} user=shardflow password={} dbname=postgres "
                       "connect_timeout=5",
                       port_, password);
  }

  int port() const noexcept {
    return port_;
  }

  const std::filesystem::path& dir() const noexcept {
    return dir_;
  }

private:
  void run(const std::string& cmd) {
    INFO(cmd);
    REQUIRE(std::system((as_ + cmd).c_str()) == 0);
  }

  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::filesystem::path dir_;
  std::string as_;
  int port_ = 0;
  int pid_ = 0;
};

} // namespace shardflow::testing
