// adapters/mld_server.hpp - one process serving every shard a KCL MultiLangDaemon leases (erlmld's
// model): `shardflow mld-server` accepts one TCP connection per shard, bridged by
// `shardflow mld-connect HOST:PORT` as the daemon's executableName.
//
// Each connection is served by a session thread that speaks the protocol (adapters/mld_worker.hpp)
// and hands records to a shard actor under a supervisor of its own (so a failing shard exhausts only
// its session's restart intensity). The
// session keeps every batch its shard processed since the last checkpoint the daemon confirmed; when
// the shard actor crashes (a flusher failure), the supervisor restarts it and the session replays
// those batches, in order, into the new incarnation before it goes on, so the daemon never notices
// and no record is lost (records after the last confirmed checkpoint may be flushed twice). Memory per
// session is bounded by what arrives between two confirmed checkpoints: keep the checkpoint interval
// short relative to the batch rate. A shard that keeps failing exhausts the supervisor's intensity
// for its restart, the session then fails, closes its connection, and the daemon restarts the lease.
//
// Threads: the accept loop runs on the caller's thread, sessions on threads of their own (they block
// on their sockets), shard actors on CAF's scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "adapters/mld_worker.hpp"

namespace shardflow::mld {

/// Options of the server.
struct server_config {
  std::string host = "127.0.0.1";
  /// 0 picks a free port (see `server::port`).
  int port = 0;
  /// The worker options of every session (the flusher factory and batch configuration included).
  worker_config worker;
  /// Shard restarts allowed within `period` (per session) before its supervisor gives up.
  int intensity = 100;
  std::chrono::seconds period{10};
  /// How long a session waits for its crashed shard to come back.
  std::chrono::milliseconds restart_wait{10'000};
};

/// Counters of a server, for tests and logs.
struct server_stats {
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> replays{0}; // shard crashes recovered by replaying
};

/// The server; see the file comment.
class server {
public:
  /// Binds the listening socket and starts the supervisor in `sys`.
  /// @throws shardflow::error (errc::io_failed) when it cannot listen.
  server(caf::actor_system& sys, server_config cfg);
  ~server();

  /// Returns the port it listens on.
  int port() const noexcept;

  /// Accepts connections until `stop` turns true (checked every 100 ms), then closes every session.
  void serve(const std::atomic<bool>& stop);

  /// Returns the counters.
  const server_stats& stats() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Bridges stdin/stdout to a TCP connection to HOST:PORT (the daemon's executableName in server
/// mode). Returns 0 when both directions ended, 1 when the connection could not be made.
int connect_stdio(const std::string& host, int port);

} // namespace shardflow::mld
