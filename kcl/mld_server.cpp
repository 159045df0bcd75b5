#include <shardflow/kcl/mld_server.hpp>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/write_all.hpp>

namespace shardflow::mld {

namespace {

int listen_on(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    throw error{errc::io_failed, fmt::format("cannot resolve {}", host)};
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    auto why = std::strerror(errno);
    ::freeaddrinfo(res);
    if (fd >= 0)
      ::close(fd);
    throw error{errc::io_failed, fmt::format("cannot listen on {}:{}: {}", host, port, why)};
  }
  ::freeaddrinfo(res);
  return fd;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    throw error{errc::io_failed, fmt::format("unix:{}: a socket path must have 1 to {} characters",
                                             path, sizeof addr.sun_path - 1)};
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Removes a socket file that no server listens on any more (left by a killed one); refuses a live
// socket and anything that is not a socket.
void remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return; // nothing there
  if (!S_ISSOCK(st.st_mode))
    throw error{errc::io_failed,
                fmt::format("cannot listen on unix:{}: the file exists and is not a "
                            "socket (remove it or choose another path)",
                            path)};
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool live = probe >= 0
                    && ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  if (probe >= 0)
    ::close(probe);
  if (live)
    throw error{errc::io_failed,
                fmt::format("cannot listen on unix:{}: another server is listening there", path)};
  ::unlink(path.c_str());
}

// Listens on a Unix socket that only this user can connect to: the mode is set before listen(), so
// no connection is possible while the file still has the umask's permissions.
int listen_unix(const std::string& path) {
  const auto addr = unix_address(path);
  remove_stale_socket(path, addr);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool bound = false;
  const auto fail = [&](const char* step) {
    const auto why = std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    if (bound)
      ::unlink(path.c_str());
    throw error{errc::io_failed, fmt::format("cannot listen on unix:{} ({}): {}", path, step, why)};
  };
  if (fd < 0)
    fail("socket");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    fail("bind");
  bound = true;
  if (::chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0)
    fail("chmod 0600");
  if (::listen(fd, 128) != 0)
    fail("listen");
  return fd;
}

} // namespace

struct server::impl {
  server_config cfg;
  server_stats stats;
  int fd = -1;
  int port = 0;
  struct stat unix_file {}; // the socket file this server made (to remove only that one)
  struct session_slot {
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
    std::atomic<bool> initialized{false}; // the daemon sent initialize
    std::chrono::steady_clock::time_point handshake_deadline;
    bool timed_out = false;
  };
  std::mutex mtx;
  std::list<session_slot> sessions;
  std::uint64_t next_id = 0;
  std::chrono::steady_clock::time_point last_refusal_log;
  std::uint64_t refused_unlogged = 0;

  explicit impl(server_config c) : cfg(std::move(c)) {
    if (!cfg.log)
      cfg.log = stderr_log("shardflow mld-server");
    if (!cfg.start_thread)
      cfg.start_thread = [](std::function<void()> f) { return std::thread{std::move(f)}; };
    if (!cfg.unix_path.empty()) {
      fd = listen_unix(cfg.unix_path);
      ::lstat(cfg.unix_path.c_str(), &unix_file);
      return;
    }
    fd = listen_on(cfg.host, cfg.port);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }

  // Removes the socket file if it is still the one this server made.
  void remove_unix_file() {
    struct stat now {};
    if (!cfg.unix_path.empty() && ::lstat(cfg.unix_path.c_str(), &now) == 0
        && now.st_ino == unix_file.st_ino && now.st_dev == unix_file.st_dev)
      ::unlink(cfg.unix_path.c_str());
  }

  // Serves one connection with the stdio worker; a failure (the flusher's among them) ends the
  // session and closes the connection: the daemon re-leases the shard from its last checkpoint.
  void session(session_slot& slot, std::uint64_t id) {
    ++stats.sessions;
    auto first = cfg.line;
    first.max_line_bytes = std::min(first.max_line_bytes, cfg.handshake_line_bytes);
    fd_line_io io{slot.fd, slot.fd, first};
    worker_config wc = cfg.worker;
    wc.log = [this, name = fmt::format("session-{}", id)](log_level level, std::string_view x) {
      cfg.log(level, fmt::format("{}: {}", name, x));
    };
    wc.on_initialize = [this, &slot, &io] {
      slot.initialized.store(true);
      io.limit(cfg.line.max_line_bytes);
    };
    worker w{io, wc};
    if (w.run() != 0)
      fail(slot, id, "", io.ended());
    else
      ::shutdown(slot.fd, SHUT_RDWR);
  }

  // Counts a failed session and ends its connection, so that its connector exits 1: a close while
  // the daemon's side is open (the connector sees the server close before the daemon ended the
  // session); a reset once the connector has sent its end (`peer_ended`: the daemon closed the
  // worker's stdin, say while a checkpoint reply was awaited), since a close would then look like
  // a session that went well. The reset discards only lines that nobody reads any more.
  void fail(session_slot& slot, std::uint64_t id, const std::string& why, bool peer_ended = false) {
    ++stats.failed;
    cfg.log(log_level::error,
            fmt::format("session-{} failed{}{}; {} its connection (the daemon re-leases the shard "
                        "from its last checkpoint)",
                        id, why.empty() ? "" : ": ", why, peer_ended ? "resetting" : "closing"));
    if (peer_ended) {
      const linger abort{1, 0}; // the close in reap() resets the connection
      (void) ::setsockopt(slot.fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
      ::shutdown(slot.fd, SHUT_RD);
    } else {
      ::shutdown(slot.fd, SHUT_RDWR);
    }
  }

  // Joins and forgets the sessions that ended (their sockets closed).
  void reap() {
    std::lock_guard<std::mutex> guard{mtx};
    reap_locked();
  }

  void reap_locked() {
    for (auto i = sessions.begin(); i != sessions.end();) {
      if (!i->done.load()) {
        ++i;
        continue;
      }
      i->thread.join();
      ::close(i->fd);
      i = sessions.erase(i);
    }
  }

  // Closes the connections that did not send initialize in time (their sessions then see EOF).
  void enforce_handshakes() {
    if (cfg.handshake_timeout.count() == 0)
      return;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& s : sessions) {
      if (s.timed_out || s.initialized.load() || s.done.load() || now < s.handshake_deadline)
        continue;
      s.timed_out = true;
      ++stats.handshake_timeouts;
      cfg.log(log_level::warning, fmt::format("closing a connection that sent no initialize "
                                              "within {} ms",
                                              cfg.handshake_timeout.count()));
      ::shutdown(s.fd, SHUT_RDWR);
    }
  }

  // A connection beyond the cap: reset at once (a reset, not a close, so that its connector fails
  // even when its daemon had ended its side already), logged at most once per interval. The line
  // is written before the reset: whoever sees the reset finds it in the log.
  void refuse(int conn) {
    ++stats.refused; // counted first: whoever sees the close sees the count
    ++refused_unlogged;
    const auto now = std::chrono::steady_clock::now();
    if (last_refusal_log == std::chrono::steady_clock::time_point{}
        || now - last_refusal_log >= cfg.refusal_log_interval) {
      cfg.log(log_level::warning,
              fmt::format("{} sessions are open (the limit, --max-connections); closed {} new "
                          "connection(s) since the last message",
                          cfg.max_connections, refused_unlogged));
      refused_unlogged = 0;
      last_refusal_log = now;
    }
    const linger reset{1, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_LINGER, &reset, sizeof reset); // no effect on a Unix socket
    ::close(conn);
  }

  void admit(int conn) {
    std::lock_guard<std::mutex> guard{mtx};
    reap_locked(); // a session that ended just now leaves room
    if (sessions.size() >= cfg.max_connections)
      return refuse(conn);
    const auto id = ++next_id;
    auto& slot = sessions.emplace_back();
    slot.fd = conn;
    slot.handshake_deadline = std::chrono::steady_clock::now() + cfg.handshake_timeout;
    ++stats.active;
    try {
      slot.thread = cfg.start_thread([this, id, &slot] {
        try {
          session(slot, id);
        } catch (const std::exception& e) { // an exception leaving a thread would end the process
          fail(slot, id, e.what());
        } catch (...) {
          fail(slot, id, "an exception of unknown type");
        }
        slot.done.store(true); // before `active` drops: a test seeing 0 finds it reapable
        --stats.active;
      });
    } catch (const std::system_error& e) {
      ++stats.thread_failures;
      --stats.active;
      cfg.log(log_level::error, fmt::format("cannot start a thread for a new session ({}); "
                                            "closing its connection",
                                            e.what()));
      ::close(conn);
      sessions.pop_back();
    }
  }

  void serve(const std::atomic<bool>& stop) {
    while (!stop.load()) {
      reap();
      enforce_handshakes();
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
          std::this_thread::sleep_for(std::chrono::milliseconds(100)); // out of descriptors
        continue;
      }
      admit(conn);
    }
    close_all();
  }

  void close_all() {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& s : sessions)
      ::shutdown(s.fd, SHUT_RDWR);
    for (auto& s : sessions) {
      s.thread.join();
      ::close(s.fd);
    }
    sessions.clear();
  }
};

server::server(server_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
}

server::~server() {
  impl_->close_all();
  if (impl_->fd >= 0)
    ::close(impl_->fd);
  impl_->remove_unix_file();
}

int server::port() const noexcept {
  return impl_->port;
}

void server::serve(const std::atomic<bool>& stop) {
  impl_->serve(stop);
}

const server_stats& server::stats() const noexcept {
  return impl_->stats;
}

namespace {

// How one direction of a bridge ended.
enum class copy_end : std::uint8_t { eof, read_failed, write_failed };

// Copies `from` to `write` until `from` ends or a read or write fails; `read_errno` gets a read's
// errno.
template <class Write>
copy_end copy_until_end(int from, Write&& write, int& read_errno) {
  char buf[1 << 16];
  for (;;) {
    const auto n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      return copy_end::eof;
    if (n < 0) {
      read_errno = errno;
      return copy_end::read_failed;
    }
    if (!write(buf, static_cast<std::size_t>(n)))
      return copy_end::write_failed;
  }
}

// What the stdin-to-socket direction did, shared by both directions. A reset is reported once, to
// whichever call on the socket comes first: when a write to the socket takes it, the read from it
// sees a plain end, so the read must hear of the write's errno before it can say how the
// connection ended.
struct upstream {
  std::mutex mtx;
  std::condition_variable changed;
  bool writing = false;     // a write to the socket is under way
  bool stdin_ended = false; // our stdin ended (the daemon ended the session)
  int write_errno = 0;      // of the write that failed, if one did
};

// How long the end of the connection waits for a write under way to fail or finish (a write that
// took a reset returns at once; one blocked on a full socket ends when the server closes it).
constexpr auto write_settle_limit = std::chrono::seconds{5};

// Copies stdin to `fd` and `fd` to stdout until the server closes; see connect_stdio. A session
// went well when our stdin ended first and the server then ended the connection cleanly: a server
// that closed first died or failed the session, and one that reset the connection refused it (a
// reset is the server's answer whenever the daemon's lines were already sent, so the order of the
// two ends cannot make a refused connection look like a session that went well). The reset is
// seen whichever direction's call takes it: the read from the socket, or a write to it.
int bridge(int fd, const std::string& where, const log_sink& log) {
  // Shared with the detached thread, which may outlive this function until the process exits.
  auto up_state = std::make_shared<upstream>();
  std::thread up;
  try {
    up = std::thread{[fd, st = up_state] {
      int unused = 0;
      const auto write = [fd, &st](const char* data, std::size_t size) {
        {
          std::lock_guard<std::mutex> guard{st->mtx};
          st->writing = true;
        }
        const bool ok = write_all(fd, data, size);
        const int why = errno;
        {
          std::lock_guard<std::mutex> guard{st->mtx};
          st->writing = false;
          if (!ok)
            st->write_errno = why != 0 ? why : EPIPE;
        }
        st->changed.notify_all();
        return ok;
      };
      if (copy_until_end(STDIN_FILENO, write, unused) == copy_end::eof) {
        std::lock_guard<std::mutex> guard{st->mtx};
        st->stdin_ended = true;
      }
      ::shutdown(fd, SHUT_WR); // the daemon closed our stdin: tell the session
    }};
  } catch (const std::system_error& e) {
    log(log_level::error, fmt::format("cannot start a thread ({}); exiting 1", e.what()));
    ::close(fd);
    return 1;
  }
  int read_errno = 0;
  const auto down = copy_until_end(
    fd, [](const char* data, std::size_t size) { return write_all(STDOUT_FILENO, data, size); },
    read_errno);
  bool server_first = false;
  if (down == copy_end::eof) {
    std::unique_lock<std::mutex> lock{up_state->mtx};
    up_state->changed.wait_for(lock, write_settle_limit, [&] { return !up_state->writing; });
    if (up_state->write_errno == ECONNRESET)
      read_errno = ECONNRESET; // the write took the reset that ended the connection
    // The session ends only after our stdin did; before that, the server died or gave up on it.
    server_first = !up_state->stdin_ended;
  }
  ::close(STDIN_FILENO); // unblock the other direction if the session ended first
  up.detach();
  ::close(fd);
  if (down == copy_end::read_failed || read_errno == ECONNRESET) {
    log(log_level::error,
        fmt::format("{} broke the connection ({}: a connection beyond its --max-connections is "
                    "reset, and so is one closed with the daemon's lines unread or whose session "
                    "failed after the daemon ended it); exiting 1",
                    where, std::strerror(read_errno)));
    return 1;
  }
  if (down == copy_end::write_failed) {
    log(log_level::error, "cannot write to standard output (the daemon is gone); exiting 1");
    return 1;
  }
  if (server_first)
    log(log_level::error, fmt::format("{} closed the connection before the daemon ended the "
                                      "session (the server died or failed the shard); exiting 1",
                                      where));
  return server_first ? 1 : 0;
}

} // namespace

int connect_stdio(const std::string& host, int port, const log_sink& log) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    log(log_level::error, fmt::format("cannot resolve {}", host));
    return 1;
  }
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    log(log_level::error,
        fmt::format("cannot connect to {}:{}: {}", host, port, std::strerror(errno)));
    if (fd >= 0)
      ::close(fd);
    ::freeaddrinfo(res);
    return 1;
  }
  ::freeaddrinfo(res);
  return bridge(fd, fmt::format("the server at {}:{}", host, port), log);
}

int connect_stdio_unix(const std::string& path, const log_sink& log) {
  sockaddr_un addr{};
  try {
    addr = unix_address(path);
  } catch (const error& e) {
    log(log_level::error, e.what());
    return 1;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    log(log_level::error, fmt::format("cannot connect to unix:{}: {}", path, std::strerror(errno)));
    if (fd >= 0)
      ::close(fd);
    return 1;
  }
  return bridge(fd, fmt::format("the server at unix:{}", path), log);
}

} // namespace shardflow::mld
