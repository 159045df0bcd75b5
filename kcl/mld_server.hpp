// kcl/mld_server.hpp - one process serving every shard a KCL MultiLangDaemon leases (erlmld's
// model): `shardflow mld-server` accepts one connection per shard (TCP on loopback, or a Unix
// socket), bridged by `shardflow mld-connect HOST:PORT|unix:PATH` as the daemon's executableName.
//
// A session is exactly the stdio worker (kcl/mld_worker.hpp: the same protocol handling, the same
// batch processor loop over the same flusher) reading and writing a socket instead of stdin and
// stdout, on a thread of its own. When its flusher fails, the session fails as `shardflow mld`
// does: it logs, closes its connection without answering the batch, and the daemon re-leases the
// shard from its last checkpoint (mld-connect exits 1, so the daemon sees a failed worker). Nothing
// that the failing flusher did not make durable is ever checkpointed, so nothing is lost; the
// records after the last checkpoint come again (at-least-once), as after any worker failure.
//
// Why not recover inside the server (a restarted shard actor and a replay of the batches the daemon
// has not confirmed)? The daemon already owns that: leases, restarts and re-delivery from the last
// checkpoint, with its own backoff and its own view of which worker holds which shard. A second
// recovery layer here duplicated the shard runtime (its own processor actor, its own replay buffer
// with its own bounds, a supervisor per session), kept up to a replay bound of batches in memory per
// session, and was a copy of replay, fencing and restart accounting that no chaos test covered. One
// runtime per product is easier to trust: `shardflow run` recovers with actors/ (supervised shards,
// replay_buffer); the MultiLangDaemon products recover with the daemon. This library therefore
// needs no actor system.
//
// Clients are not authenticated: whoever can connect can feed and checkpoint shards. Listen on
// loopback or on a Unix socket (created with mode 0600, removed when the server ends; a stale
// file left by a killed server is replaced, a live server's socket or any other file is refused).
// Clients are bounded too: at most `max_connections` sessions (beyond it a connection is accepted
// and reset at once, logged at most once per `refusal_log_interval`); a connection that has not sent
// `initialize` within `handshake_timeout` is closed; a session thread that cannot start (the
// process's thread limit) closes its connection and the server goes on. No exception leaves a
// session thread. Two sessions may serve one shard at once (a lease that moved while the old
// holder's connection lingers): the daemon fences their checkpoints, the file flusher their files.
//
// Threads: the accept loop runs on the caller's thread, sessions on threads of their own (they block
// on their sockets). Lines go to one sink (`server_config::log`), the sessions' with their name in
// front. The library installs no signal handlers and prints nothing itself: the host ignores
// SIGPIPE (a client that vanished is a failed write) and stops `serve` from its own signal policy.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

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
  /// The worker options of every session (the flusher factory and batch configuration included;
  /// its `log` and `on_initialize` are the server's own).
  worker_config worker;
  /// Starts a session thread; tests inject failures (std::system_error, as std::thread throws).
  std::function<std::thread(std::function<void()>)> start_thread;
  /// Where the server's lines and its sessions' go, the latter as "session-N: ..." (default:
  /// `stderr_log("shardflow mld-server")`).
  log_sink log;
};

/// Counters of a server, for tests and logs.
struct server_stats {
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> failed{0};  // sessions that failed (a flusher, the protocol, I/O)
  std::atomic<std::uint64_t> active{0};  // sessions whose thread has not ended yet
  std::atomic<std::uint64_t> refused{0}; // connections reset because `max_connections` were open
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> thread_failures{0}; // session threads that could not start
};

/// The server; see the file comment.
class server {
public:
  /// Binds the listening socket (for a Unix socket: replaces a stale file, refuses a live one).
  /// @throws shardflow::error (errc::io_failed) when it cannot listen.
  explicit server(server_config cfg);
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
/// the connection cleanly; 1 when the connection could not be made, the server closed it first (it
/// died or failed the session: the daemon must see a failed worker), or reset it (a connection
/// beyond `max_connections`, or a session that failed after the daemon ended it, e.g. while a
/// checkpoint reply was awaited; seen by whichever direction's call takes it, the read from the
/// socket or a write to it). A Unix socket carries no reset: there, a session that fails after the
/// daemon ended it looks like one that went well (0). Lines go to `log`. Installs no signal
/// handlers: the caller ignores SIGPIPE, and as the daemon's child SIGINT and SIGTERM too (see
/// kcl/mld_worker.hpp).
/// Process-ending: it takes over the process's stdin and stdout (it closes stdin, and a thread
/// still blocked reading it is left behind), so call it as the last thing a process does, as
/// `shardflow mld-connect` does.
int connect_stdio(const std::string& host, int port, const log_sink& log);

/// Like `connect_stdio`, to the Unix socket at `path`.
int connect_stdio_unix(const std::string& path, const log_sink& log);

} // namespace shardflow::mld
