#include <shardflow/kcl/mld_server.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_set>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/write_all.hpp>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<shardflow::checkpoint>)

namespace shardflow::mld {

namespace {

// -- the shard actor of a session -----------------------------------------------------------------

struct processor_state {
  static inline const char* name = "shardflow.mld_shard";
  std::unique_ptr<batch_processor> proc;
  std::unordered_set<const stream_record*> poison;
};

// The actor introduces itself to its session when it answers the supervisor's start handshake.
caf::behavior processor_actor(caf::stateful_actor<processor_state>* self, caf::actor sup,
                              caf::actor session, flusher_factory make, batch_config batch,
                              shard_id id) {
  follow_supervisor(self, sup);
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr& eptr) { return error_from(eptr); });
  auto& st = self->state;
  st.proc = std::make_unique<batch_processor>(
    id, std::make_unique<poison_filter>(make(id), &st.poison), batch, self->clock().now());
  return {
    [self, session](start_atom) {
      self->send(session, attach_atom::value, caf::actor_cast<caf::actor>(self));
      return caf::ok_atom::value;
    },
    [self](records_atom, const record_batch& b, const std::vector<std::uint32_t>& poison) {
      auto& st = self->state;
      st.poison.clear();
      for (auto i : poison)
        st.poison.insert(&b[i]);
      return st.proc->process(b, self->clock().now());
    },
    [self](tick_atom) { return self->state.proc->heartbeat(self->clock().now()); },
    [self](shutdown_atom, shutdown_reason why) {
      return self->state.proc->shutdown(why, self->clock().now());
    },
  };
}

// -- the session's port: a supervised shard actor, replayed into after a crash ---------------------

class actor_port final : public shard_port {
public:
  actor_port(caf::actor_system& sys, const server_config& cfg, std::string child_id,
             server_stats& stats)
    : self_(sys), cfg_(cfg), child_id_(std::move(child_id)), stats_(stats) {
  }

  ~actor_port() override {
    // The session is over: its supervisor stops the shard actor.
    if (sup_)
      self_->send_exit(sup_, caf::exit_reason::user_shutdown);
  }

  void open(const shard_id& id, batch_processor::time_point) override {
    // A supervisor per session: a shard that keeps failing exhausts only its own session's
    // intensity, never another session's.
    // Every incarnation of the shard actor introduces itself to this session (attach).
    child_spec spec;
    spec.id = child_id_;
    spec.start
      = [make = cfg_.worker.make_flusher, batch = cfg_.worker.batch, id,
         session = caf::actor{self_.ptr()}](start_context& ctx) -> caf::expected<caf::actor> {
      return ctx.self->spawn(processor_actor, caf::actor_cast<caf::actor>(ctx.self), session, make,
                             batch, id);
    };
    supervisor_flags flags;
    flags.intensity = cfg_.intensity;
    flags.period = cfg_.period;
    auto sup = spawn_supervisor(self_->system(), flags, {std::move(spec)});
    if (!sup)
      throw error{errc::start_failed,
                  fmt::format("shard {}: {}", id, self_->system().render(sup.error()))};
    sup_ = *sup;
    self_->monitor(sup_); // reattach gives up at once when the supervisor does
    auto started = request<caf::ok_atom>(sup_, start_atom::value);
    if (!started)
      throw error{errc::start_failed,
                  fmt::format("shard {}: {}", id, self_->system().render(started.error()))};
    reattach();
  }

  std::optional<checkpoint> heartbeat(batch_processor::time_point) override {
    return call(false, [&] { return request<std::optional<checkpoint>>(proc_, tick_atom::value); });
  }

  std::optional<checkpoint> process(const record_batch& batch,
                                    const std::vector<std::uint32_t>& poison,
                                    batch_processor::time_point) override {
    const bool kept = retain(batch, poison);
    return call(kept, [&] {
      return request<std::optional<checkpoint>>(proc_, records_atom::value, batch, poison);
    });
  }

  std::optional<checkpoint> shutdown(shutdown_reason why, batch_processor::time_point) override {
    return call(false, [&] {
      return request<std::optional<checkpoint>>(proc_, shutdown_atom::value, why);
    });
  }

  void acknowledged(const sequence_number& position) override {
    while (
      !retained_.empty()
      && (retained_.front().first.empty() || retained_.front().first.back().sequence <= position)) {
      retained_bytes_ -= bytes_of(retained_.front().first);
      retained_records_ -= retained_.front().first.size();
      retained_.pop_front();
    }
    if (unretained_upto_ && *unretained_upto_ <= position) {
      unretained_upto_.reset(); // every batch not kept is covered: replay works again
      cfg_.log(
        fmt::format("{}: a checkpoint covers every batch not kept; retaining again", child_id_));
    }
  }

private:
  static std::uint64_t bytes_of(const record_batch& b) {
    std::uint64_t n = 0;
    for (const auto& x : b)
      n += payload_bytes(x) + sizeof(stream_record);
    return n;
  }

  // Keeps `batch` for a replay unless that passes the bound; past it, keeps nothing until a
  // confirmed checkpoint covers every batch not kept (see the header's file comment). Returns
  // whether it kept it.
  bool retain(const record_batch& batch, const std::vector<std::uint32_t>& poison) {
    if (batch.empty())
      return false; // nothing to replay, nothing a checkpoint must cover
    const auto bytes = bytes_of(batch);
    if (!unretained_upto_
        && (retained_bytes_ + bytes > cfg_.max_replay_bytes
            || retained_records_ + batch.size() > cfg_.max_replay_records)) {
      ++stats_.replay_overflows;
      cfg_.log(
        fmt::format("{}: the replay buffer would pass its bound ({} bytes, {} records) before "
                    "the daemon confirms a checkpoint; not retaining until it does (a shard "
                    "crash meanwhile fails the session: the daemon re-leases the shard from "
                    "its last checkpoint)",
                    child_id_, cfg_.max_replay_bytes, cfg_.max_replay_records));
      retained_.clear();
      retained_bytes_ = 0;
      retained_records_ = 0;
      unretained_upto_ = batch.back().sequence;
    }
    if (unretained_upto_) {
      unretained_upto_ = batch.back().sequence; // sequence numbers only grow within a shard
      return false;
    }
    retained_.emplace_back(batch, poison);
    retained_bytes_ += bytes;
    retained_records_ += batch.size();
    return true;
  }

  // No timeout: a slow flush is not a crash; a dead actor answers with request_receiver_down.
  template <class T, class... Ts>
  caf::expected<T> request(const caf::actor& dst, Ts&&... xs) {
    caf::expected<T> result{caf::error{}};
    self_->request(dst, caf::infinite, std::forward<Ts>(xs)...)
      .receive([&](T& x) { result = std::move(x); }, [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  // Runs `f` against the shard actor; if it died, waits for its replacement, replays what the
  // daemon has not confirmed, and runs `f` again. `f_sends_last` says that `f` itself sends the
  // newest retained batch (process, when it kept its batch), so the replay leaves that one to it.
  template <class F>
  std::optional<checkpoint> call(bool f_sends_last, F f) {
    for (int attempt = 0;; ++attempt) {
      auto r = f();
      if (r)
        return std::move(*r);
      if (attempt >= 3)
        throw error{errc::flusher_failed, fmt::format("{}: the shard keeps failing: {}", child_id_,
                                                      self_->system().render(r.error()))};
      if (unretained_upto_)
        throw error{
          errc::flusher_failed,
          fmt::format("{}: the shard failed ({}) and cannot be replayed: the batches since "
                      "the last confirmed checkpoint passed the replay bound; the daemon "
                      "re-leases the shard from that checkpoint",
                      child_id_, self_->system().render(r.error()))};
      cfg_.log(fmt::format("{}: the shard failed ({}); replaying {} batches into its next "
                           "incarnation",
                           child_id_, self_->system().render(r.error()), retained_.size()));
      reattach();
      ++stats_.replays;
      const auto n = retained_.size() - (f_sends_last && !retained_.empty() ? 1 : 0);
      for (std::size_t i = 0; i < n; ++i) {
        auto& [b, p] = retained_[i];
        if (!request<std::optional<checkpoint>>(proc_, records_atom::value, b, p))
          break; // failed again: the next round of the loop starts over
      }
    }
  }

  // Waits for the next incarnation of the shard actor to introduce itself, and takes the newest if
  // several did meanwhile. Fails when none does within `restart_wait`, or at once when the
  // supervisor gave up (its children are gone with it, whatever introduced itself before).
  void reattach() {
    const auto old = proc_;
    const auto deadline = std::chrono::steady_clock::now() + cfg_.restart_wait;
    for (bool more = true; more && !supervisor_gone_;) {
      // Once one has come, only what is already queued.
      const auto wait = proc_ != old ? std::chrono::steady_clock::duration{0}
                                     : std::max(deadline - std::chrono::steady_clock::now(),
                                                std::chrono::steady_clock::duration{0});
      self_->receive([&](attach_atom, caf::actor& shard) { proc_ = std::move(shard); },
                     [&](caf::down_msg& down) {
                       supervisor_gone_ = supervisor_gone_ || down.source == sup_;
                     },
                     caf::after(wait) >> [&] { more = false; });
    }
    if (supervisor_gone_)
      throw error{errc::start_failed, fmt::format("{}: the shard's supervisor gave up", child_id_)};
    if (proc_ == old)
      throw error{errc::start_failed, fmt::format("{}: the shard did not come back within {} ms",
                                                  child_id_, cfg_.restart_wait.count())};
  }

  caf::scoped_actor self_;
  caf::actor sup_; // this session's supervisor
  const server_config& cfg_;
  std::string child_id_;
  server_stats& stats_;
  caf::actor proc_;
  bool supervisor_gone_ = false; // its down message came: no incarnation will come again
  std::deque<std::pair<record_batch, std::vector<std::uint32_t>>> retained_;
  std::uint64_t retained_bytes_ = 0;
  std::uint64_t retained_records_ = 0;
  // Set while not retaining (past the bound): the newest position not kept.
  std::optional<sequence_number> unretained_upto_;
};

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
  caf::actor_system& sys;
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

  impl(caf::actor_system& s, server_config c) : sys(s), cfg(std::move(c)) {
    if (!cfg.log)
      cfg.log = [](const std::string& x) { fmt::print(stderr, "shardflow mld-server: {}\n", x); };
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

  void session(session_slot& slot, std::uint64_t id) {
    ++stats.sessions;
    auto first = cfg.line;
    first.max_line_bytes = std::min(first.max_line_bytes, cfg.handshake_line_bytes);
    fd_line_io io{slot.fd, slot.fd, first};
    worker_config wc = cfg.worker;
    wc.make_port = [this, id, &slot, &io] {
      slot.initialized.store(true); // the worker makes its port when it handles initialize
      io.limit(cfg.line.max_line_bytes);
      return std::make_unique<actor_port>(sys, cfg, fmt::format("session-{}", id), stats);
    };
    worker w{io, wc};
    const int rc = w.run();
    if (rc != 0)
      cfg.log(fmt::format("session-{} failed; closing its connection", id));
    ::shutdown(slot.fd, SHUT_RDWR);
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
      cfg.log(fmt::format("closing a connection that sent no initialize within {} ms",
                          cfg.handshake_timeout.count()));
      ::shutdown(s.fd, SHUT_RDWR);
    }
  }

  // A connection beyond the cap: closed at once, logged at most once per interval.
  void refuse(int conn) {
    ++stats.refused; // counted first: whoever sees the close sees the count
    ::close(conn);
    ++refused_unlogged;
    const auto now = std::chrono::steady_clock::now();
    if (last_refusal_log != std::chrono::steady_clock::time_point{}
        && now - last_refusal_log < cfg.refusal_log_interval)
      return;
    cfg.log(fmt::format("{} sessions are open (the limit, --max-connections); closed {} new "
                        "connection(s) since the last message",
                        cfg.max_connections, refused_unlogged));
    refused_unlogged = 0;
    last_refusal_log = now;
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
          cfg.log(fmt::format("session-{} failed: {}; closing its connection", id, e.what()));
          ::shutdown(slot.fd, SHUT_RDWR);
        } catch (...) {
          cfg.log(fmt::format("session-{} failed; closing its connection", id));
          ::shutdown(slot.fd, SHUT_RDWR);
        }
        slot.done.store(true); // before `active` drops: a test seeing 0 finds it reapable
        --stats.active;
      });
    } catch (const std::system_error& e) {
      ++stats.thread_failures;
      --stats.active;
      cfg.log(fmt::format("cannot start a thread for a new session ({}); closing its connection",
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

server::server(caf::actor_system& sys, server_config cfg)
  : impl_(std::make_unique<impl>(sys, std::move(cfg))) {
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

// Copies stdin to `fd` and `fd` to stdout until the server closes; see connect_stdio.
int bridge(int fd, const std::string& where) {
  // Returns true when `from` ended (not when reading or writing failed).
  auto copy = [](int from, int to) {
    char buf[1 << 16];
    for (;;) {
      auto n = ::read(from, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0 || !write_all(to, buf, static_cast<std::size_t>(n)))
        return n == 0;
    }
  };
  // Shared with the detached thread, which may outlive this function until the process exits.
  auto stdin_ended = std::make_shared<std::atomic<bool>>(false);
  std::thread up;
  try {
    up = std::thread{[copy, fd, stdin_ended] {
      if (copy(STDIN_FILENO, fd))
        stdin_ended->store(true);
      ::shutdown(fd, SHUT_WR); // the daemon closed our stdin: tell the session
    }};
  } catch (const std::system_error& e) {
    fmt::print(stderr, "shardflow mld-connect: cannot start a thread ({}); exiting 1\n", e.what());
    ::close(fd);
    return 1;
  }
  copy(fd, STDOUT_FILENO);
  // The session ends only after our stdin did; before that, the server died or gave up on it.
  const bool server_first = !stdin_ended->load();
  ::close(STDIN_FILENO); // unblock the other direction if the session ended first
  up.detach();
  ::close(fd);
  if (server_first)
    fmt::print(stderr,
               "shardflow mld-connect: {} closed the connection before the daemon ended the "
               "session (the server died or failed the shard); exiting 1\n",
               where);
  return server_first ? 1 : 0;
}

// Like the stdio worker: the daemon ends us by closing stdin; a signal to the process group must
// not cut the protocol short, and a closed socket must not kill us with SIGPIPE.
void ignore_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
}

} // namespace

int connect_stdio(const std::string& host, int port) {
  ignore_signals();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    fmt::print(stderr, "shardflow mld-connect: cannot resolve {}\n", host);
    return 1;
  }
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    fmt::print(stderr, "shardflow mld-connect: cannot connect to {}:{}: {}\n", host, port,
               std::strerror(errno));
    ::freeaddrinfo(res);
    return 1;
  }
  ::freeaddrinfo(res);
  return bridge(fd, fmt::format("the server at {}:{}", host, port));
}

int connect_stdio_unix(const std::string& path) {
  ignore_signals();
  sockaddr_un addr{};
  try {
    addr = unix_address(path);
  } catch (const error& e) {
    fmt::print(stderr, "shardflow mld-connect: {}\n", e.what());
    return 1;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    fmt::print(stderr, "shardflow mld-connect: cannot connect to unix:{}: {}\n", path,
               std::strerror(errno));
    return 1;
  }
  return bridge(fd, fmt::format("the server at unix:{}", path));
}

} // namespace shardflow::mld
