// kcl/mld_server.hpp - one process serving every shard a KCL MultiLangDaemon leases (erlmld's
// model): `shardflow mld-server` accepts one connection per shard (TCP on loopback, or a Unix
// socket), bridged by `shardflow mld-connect HOST:PORT|unix:PATH` as the daemon's executableName.
//
// Each connection is served by a session thread that speaks the protocol (kcl/mld_worker.hpp)
// and hands records to a shard actor under a supervisor of its own (so a failing shard exhausts only
// its session's restart intensity). The
// session keeps every batch its shard processed since the last checkpoint the daemon confirmed; when
// the shard actor crashes (a flusher failure), the supervisor restarts it and the session replays
// those batches, in order, into the new incarnation before it goes on, so the daemon never notices
// and no record is lost (records after the last confirmed checkpoint may be flushed twice). A shard
// that keeps failing exhausts the supervisor's intensity for its restart, the session then fails,
// closes its connection, and the daemon restarts the lease.
//
// The replay buffer is bounded per session (`max_replay_bytes`, `max_replay_records`): a batch that
// would pass the bound empties it and the session stops retaining until the daemon confirms a
// checkpoint at or past every batch it did not keep (then it retains again). A shard crash while
// batches are missing cannot be replayed: the session fails, closes its connection, and the daemon
// re-leases the shard from its last checkpoint: nothing is lost (at-least-once), only redone.
//
// Clients are not authenticated: whoever can connect can feed and checkpoint shards. Listen on
// loopback or on a Unix socket (created with mode 0600, removed when the server ends; a stale
// file left by a killed server is replaced, a live server's socket or any other file is refused).
// Clients are bounded too: at most `max_connections` sessions (beyond it a connection is accepted
// and closed at once, logged at most once per `refusal_log_interval`); a connection that has not sent
// `initialize` within `handshake_timeout` is closed; a session thread that cannot start (the
// process's thread limit) closes its connection and the server goes on.
//
// Threads: the accept loop runs on the caller's thread, sessions on threads of their own (they block
// on their sockets), shard actors on CAF's scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>

#include <shardflow/kcl/mld_worker.hpp>

namespace shardflow::mld {

/// Options of the server.
struct server_config {
  std::string host = "127.0.0.1";
  /// 0 picks a free port (see `server::port`).
  int port = 0;
  /// When set, listen on this Unix socket instead of `host` and `port`.
  std::string unix_path;
  /// How each session reads its connection (the longest line accepted).
  fd_line_io_config line;
  /// The longest line accepted before `initialize` (which is well under 1 KiB), so that connections
  /// that never introduce themselves hold little memory: at most twice this each.
  std::size_t handshake_line_bytes = std::size_t{64} << 10;
  /// Sessions served at once (each holds a thread); a connection beyond them is closed at once.
  std::size_t max_connections = 256;
  /// A connection that sends no `initialize` within this is closed (zero: no limit).
  std::chrono::milliseconds handshake_timeout{30'000};
  /// At most one log line about refused connections per this interval.
  std::chrono::milliseconds refusal_log_interval{1'000};
  /// Bound of a session's replay buffer: the retained records' keys and data plus
  /// sizeof(stream_record) per record, and the number of records.
  std::uint64_t max_replay_bytes = std::uint64_t{256} << 20;
  std::uint64_t max_replay_records = 1'000'000;
  /// The worker options of every session (the flusher factory and batch configuration included).
  worker_config worker;
  /// Shard restarts allowed within `period` (per session) before its supervisor gives up.
  int intensity = 100;
  std::chrono::seconds period{10};
  /// How long a session waits for its crashed shard to come back.
  std::chrono::milliseconds restart_wait{10'000};
  /// Starts a session thread; tests inject failures (std::system_error, as std::thread throws).
  std::function<std::thread(std::function<void()>)> start_thread;
  /// Where the server's own lines go (default: stderr, prefixed "shardflow mld-server: ").
  std::function<void(const std::string&)> log;
};

/// Counters of a server, for tests and logs.
struct server_stats {
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> replays{0}; // shard crashes recovered by replaying
  std::atomic<std::uint64_t> active{0};  // sessions whose thread has not ended yet
  std::atomic<std::uint64_t> refused{0}; // connections closed because `max_connections` were open
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> thread_failures{0};  // session threads that could not start
  std::atomic<std::uint64_t> replay_overflows{0}; // times a session stopped retaining batches
};

/// The server; see the file comment.
class server {
public:
  /// Binds the listening socket (for a Unix socket: replaces a stale file, refuses a live one).
  /// @throws shardflow::error (errc::io_failed) when it cannot listen.
  server(caf::actor_system& sys, server_config cfg);
  ~server();

  /// Returns the port it listens on (0 on a Unix socket).
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
/// mode). Returns 0 when the daemon ended the session (closed our stdin) and the server then closed
/// the connection; 1 when the connection could not be made, or the server closed it first (it died
/// or gave up the session: the daemon must see a failed worker).
int connect_stdio(const std::string& host, int port);

/// Like `connect_stdio`, to the Unix socket at `path`.
int connect_stdio_unix(const std::string& path);

} // namespace shardflow::mld
