// An integration test: the server runs on CAF's threads and real sockets (sessions block on them, so
// the deterministic scheduler cannot drive it). The daemon's side is this test, over loopback TCP or
// a Unix socket. Waits are on observable state with deadlines; nothing sleeps a fixed time.
#include <shardflow/kcl/mld_server.hpp>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/support/recording_flusher.hpp"
#include <shardflow/actors/messages.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/flushers/base64.hpp>
#include <shardflow/flushers/file_flusher.hpp>

using namespace shardflow;

namespace {

const std::string initialize_line
  = R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})";

// A processRecords line with one record whose data is `base64_data`, at sequence number `seq`.
std::string records_line(const std::string& base64_data, int seq) {
  return R"({"action":"processRecords","records":[{"data":")" + base64_data
         + R"(","partitionKey":"k","sequenceNumber":")" + std::to_string(seq)
         + R"(","subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0})";
}

std::string status_of(const std::string& action) {
  return "{\"action\":\"status\",\"responseFor\":\"" + action + "\"}\n";
}

// Waits until `done` holds, at most `limit`; returns whether it held.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1)); // a poll interval, not a wait
  }
  return true;
}

std::size_t threads_of_this_process() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator{"/proc/self/task"})
    ++n;
  return n;
}

// A connection to the server: writes lines, reads what comes back until EOF.
class daemon_connection {
public:
  explicit daemon_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    limit_reads();
  }

  explicit daemon_connection(const std::string& unix_path)
    : fd_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    unix_path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    limit_reads();
  }

  ~daemon_connection() {
    ::close(fd_);
  }

  void send(const std::string& line) {
    const auto out = line + "\n";
    REQUIRE(::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));
  }

  // Ends our side (the daemon closed the worker's stdin).
  void finish() {
    ::shutdown(fd_, SHUT_WR);
  }

  // The next line the server sends, with its newline; empty at EOF or after the read limit.
  std::string next_line() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl + 1);
        buf_.erase(0, nl + 1);
        return line;
      }
      char chunk[4096];
      const auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0)
        return {};
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Everything the server sends until it closes the connection; `timed_out` if it never does.
  std::string until_closed(bool& timed_out) {
    std::string got = std::move(buf_);
    buf_.clear();
    char chunk[4096];
    for (;;) {
      const auto n = ::read(fd_, chunk, sizeof chunk);
      if (n > 0) {
        got.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      timed_out = n < 0;
      return got;
    }
  }

  // Whether the server closes the connection without another word (within the read limit).
  bool closed_silently() {
    bool timed_out = false;
    return until_closed(timed_out).empty() && !timed_out;
  }

private:
  void limit_reads() {
    // Liveness only: nothing here should take more than a few milliseconds.
    timeval limit{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }

  int fd_;
  std::string buf_;
};

// One session of a daemon that initializes and loses the lease at once; returns what the server
// answered (empty when anything failed). No Catch2 assertion here: it runs on a thread of its own.
std::string lease_and_lose(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval limit{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const auto lines = initialize_line + "\n" + R"({"action":"leaseLost"})" + "\n";
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0
      && ::send(fd, lines.data(), lines.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(lines.size())
      && ::shutdown(fd, SHUT_WR) == 0) {
    char chunk[4096];
    for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;)
      got.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

caf::actor_system_config& configured(caf::actor_system_config& cfg) {
  configure(cfg);
  return cfg;
}

// A server in its own actor system, serving on a thread of its own until destroyed.
class running_server {
public:
  explicit running_server(mld::server_config sc)
    : sys_(configured(sys_cfg_)),
      srv_(sys_, std::move(sc)),
      serving_([this] { srv_.serve(stop_); }) {
  }

  ~running_server() {
    stop_ = true;
    serving_.join();
  }

  mld::server& operator*() {
    return srv_;
  }
  mld::server* operator->() {
    return &srv_;
  }

private:
  caf::actor_system_config sys_cfg_;
  caf::actor_system sys_;
  mld::server srv_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

mld::server_config quiet_config(std::shared_ptr<testing::flusher_script> script) {
  mld::server_config sc;
  sc.worker.make_flusher = testing::recording_flusher::factory(std::move(script));
  sc.worker.log = [](const std::string&) {};
  sc.log = [](const std::string&) {};
  // No flush and no checkpoint exchange on their own: every answer is the status of its action.
  sc.worker.batch.flush_interval = std::chrono::hours(1);
  sc.worker.batch.checkpoint_interval = std::chrono::hours(1);
  return sc;
}

// Sends initialize and `lines`, ends our side, and returns everything the server answered (checking
// that it closed the connection).
std::string answers_to(daemon_connection& daemon, const std::vector<std::string>& lines) {
  daemon.send(initialize_line);
  for (const auto& line : lines)
    daemon.send(line);
  daemon.finish();
  bool timed_out = false;
  auto got = daemon.until_closed(timed_out);
  CHECK_FALSE(timed_out);
  return got;
}

// The answers to initialize and `n` processRecords.
std::string statuses(int n) {
  auto out = status_of("initialize");
  for (int i = 0; i < n; ++i)
    out += status_of("processRecords");
  return out;
}

// Runs a short real session on `daemon` and returns whether every action was answered.
bool real_session_works(daemon_connection& daemon) {
  return answers_to(daemon, {records_line("YQ==", 1)}) == statuses(1);
}

} // namespace

SCENARIO("a session whose shard's supervisor gives up fails at once and closes its connection",
         "[kcl][mld]") {
  caf::actor_system_config cfg;
  configure(cfg);
  caf::actor_system sys{cfg};
  auto script = std::make_shared<testing::flusher_script>();
  script->fail_add = true; // every incarnation fails at its first record
  mld::server_config sc;
  sc.intensity = 0;                           // the first crash is one too many
  sc.restart_wait = std::chrono::seconds(60); // waiting for a comeback would outlast the read
  sc.worker.make_flusher = testing::recording_flusher::factory(script);
  sc.worker.log = [](const std::string&) {};
  mld::server srv{sys, sc};
  std::atomic<bool> stop{false};
  std::thread serving{[&] { srv.serve(stop); }};
  {
    daemon_connection daemon{srv.port()};
    daemon.send(
      R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})");
    daemon.send(
      R"({"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"1","subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0})");
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

SCENARIO(
  "connections beyond max_connections are closed at once, the server's threads stay bounded, "
  "and a real session works once the idle ones are gone",
  "[kcl][mld]") {
  constexpr std::size_t cap = 4;
  constexpr std::size_t extra = 20;
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.max_connections = cap;
  sc.handshake_timeout = std::chrono::minutes(10); // the idle ones stay until we close them
  running_server srv{sc};
  const auto threads_before = threads_of_this_process();
  {
    std::vector<std::unique_ptr<daemon_connection>> idle;
    for (std::size_t i = 0; i < cap; ++i)
      idle.push_back(std::make_unique<daemon_connection>(srv->port()));
    REQUIRE(eventually([&] { return srv->stats().sessions == cap; }));
    for (std::size_t i = 0; i < extra; ++i) {
      daemon_connection over{srv->port()};
      CHECK(over.closed_silently()); // at once: nothing else closes it within the read limit
    }
    CHECK(srv->stats().refused == extra);
    CHECK(srv->stats().sessions == cap);
    CHECK(threads_of_this_process() <= threads_before + cap);
  }
  REQUIRE(eventually([&] { return srv->stats().active == 0; }));
  daemon_connection daemon{srv->port()};
  CHECK(real_session_works(daemon));
}

SCENARIO("a connection that sends no initialize within the handshake timeout is closed, while an "
         "initialized session goes on",
         "[kcl][mld]") {
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.handshake_timeout = std::chrono::milliseconds(300);
  running_server srv{sc};
  daemon_connection early{srv->port()};
  early.send(initialize_line);
  CHECK(early.next_line() == status_of("initialize"));
  const auto opened = std::chrono::steady_clock::now();
  {
    daemon_connection idle{srv->port()};
    CHECK(idle.closed_silently());
  }
  CHECK(std::chrono::steady_clock::now() - opened >= sc.handshake_timeout);
  CHECK(srv->stats().handshake_timeouts == 1);
  // `early` is older than the timeout by now, and still served.
  early.send(records_line("YQ==", 1));
  CHECK(early.next_line() == status_of("processRecords"));
  early.finish();
  CHECK(early.closed_silently());
}

SCENARIO("a session thread that cannot start closes its connection and the server goes on",
         "[kcl][mld]") {
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  // The first two threads fail as std::thread does at the process's thread limit (EAGAIN).
  auto failures_left = std::make_shared<std::atomic<int>>(2);
  sc.start_thread = [failures_left](std::function<void()> f) {
    if (failures_left->fetch_sub(1) > 0)
      throw std::system_error{EAGAIN, std::generic_category(), "cannot create a thread"};
    return std::thread{std::move(f)};
  };
  running_server srv{sc};
  for (int i = 0; i < 2; ++i) {
    daemon_connection refused{srv->port()};
    CHECK(refused.closed_silently());
  }
  CHECK(srv->stats().thread_failures == 2);
  daemon_connection daemon{srv->port()};
  CHECK(real_session_works(daemon));
  CHECK(srv->stats().sessions == 1);
}

SCENARIO(
  "within the replay bound a crashed shard is replayed into, and past it the crash fails the "
  "session, so that the daemon re-leases the shard from its last checkpoint",
  "[kcl][mld]") {
  auto script = std::make_shared<testing::flusher_script>();
  script->fail_on_data = {"c"};   // the third batch crashes the shard once
  auto sc = quiet_config(script); // no flush, no checkpoint: every batch stays retained
  const std::vector<std::string> a_b_c = {records_line("YQ==", 1), records_line("Yg==", 2),
                                          records_line("Yw==", 3)};
  GIVEN("a bound that holds the batches") {
    running_server srv{sc};
    daemon_connection daemon{srv->port()};
    CHECK(answers_to(daemon, a_b_c) == statuses(3));
    CHECK(srv->stats().replays == 1);
    CHECK(srv->stats().replay_overflows == 0);
  }
  GIVEN("a bound of two records") {
    sc.max_replay_records = 2;
    running_server srv{sc};
    daemon_connection daemon{srv->port()};
    // c passes the bound, then crashes the shard: it is never answered, and the daemon restarts
    // the lease from its last checkpoint.
    CHECK(answers_to(daemon, a_b_c) == statuses(2));
    CHECK(srv->stats().replays == 0);
    CHECK(srv->stats().replay_overflows == 1);
  }
  GIVEN("a bound in bytes smaller than one record") {
    sc.max_replay_bytes = 1;
    running_server srv{sc};
    daemon_connection daemon{srv->port()};
    CHECK(answers_to(daemon, {a_b_c[0], a_b_c[2]}) == statuses(1));
    CHECK(srv->stats().replays == 0);
    CHECK(srv->stats().replay_overflows == 1);
  }
}

SCENARIO("after the replay bound was passed, a confirmed checkpoint covering every batch not kept "
         "makes crashes replayable again",
         "[kcl][mld]") {
  auto script = std::make_shared<testing::flusher_script>();
  script->fail_on_data = {"c"};
  auto sc = quiet_config(script);
  sc.worker.batch.flush_interval = std::chrono::milliseconds(0); // flush and checkpoint every batch
  sc.worker.batch.checkpoint_interval = std::chrono::milliseconds(0);
  sc.max_replay_records = 1;
  running_server srv{sc};
  daemon_connection daemon{srv->port()};
  const auto checkpoint_at = [](int seq) {
    return R"({"action":"checkpoint","sequenceNumber":")" + std::to_string(seq)
           + R"(","subSequenceNumber":0})" + "\n";
  };
  const auto reply = [](int seq, const std::string& error) {
    return R"({"action":"checkpoint","sequenceNumber":")" + std::to_string(seq)
           + R"(","subSequenceNumber":0,"error":)" + error + "}";
  };
  daemon.send(initialize_line);
  CHECK(daemon.next_line() == status_of("initialize"));
  daemon.send(records_line("YQ==", 1)); // a: retained
  CHECK(daemon.next_line() == checkpoint_at(1));
  daemon.send(reply(1, R"("InvalidStateException")")); // not confirmed, not retried
  CHECK(daemon.next_line() == status_of("processRecords"));
  daemon.send(records_line("Yg==", 2)); // b: passes the bound of one record
  CHECK(daemon.next_line() == checkpoint_at(2));
  daemon.send(reply(2, "null")); // confirmed: covers a and b
  CHECK(daemon.next_line() == status_of("processRecords"));
  CHECK(srv->stats().replay_overflows == 1);
  daemon.send(records_line("Yw==", 3)); // c: retained again, crashes the shard once, replayed
  CHECK(daemon.next_line() == checkpoint_at(3));
  daemon.send(reply(3, "null"));
  CHECK(daemon.next_line() == status_of("processRecords"));
  daemon.finish();
  CHECK(daemon.closed_silently());
  CHECK(srv->stats().replays == 1);
  CHECK(srv->stats().replay_overflows == 1);
}

SCENARIO(
  "a server on a Unix socket: mode 0600, a stale file replaced, a live socket or another file "
  "refused, the file removed at the end",
  "[kcl][mld]") {
  const auto dir = std::filesystem::temp_directory_path()
                   / ("shardflow-mld-unix-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = (dir / "mld.sock").string();
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.unix_path = path;
  {
    // A stale socket file, as a killed server leaves it: bound, never listened on, closed.
    const int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(::bind(stale, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(stale);
  }
  {
    running_server srv{sc};
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    const auto start_second = [&] {
      caf::actor_system_config cfg;
      caf::actor_system sys{configured(cfg)};
      mld::server second{sys, sc};
    };
    CHECK_THROWS_WITH(start_second(), Catch::Contains("another server is listening"));
    daemon_connection daemon{path};
    CHECK(real_session_works(daemon));
  }
  CHECK_FALSE(std::filesystem::exists(path));
  std::ofstream{path} << "not a socket\n";
  caf::actor_system_config cfg;
  caf::actor_system sys{configured(cfg)};
  const auto start = [&] { mld::server srv{sys, sc}; };
  CHECK_THROWS_WITH(start(), Catch::Contains("is not a socket"));
  CHECK(std::filesystem::exists(path)); // left alone
  std::filesystem::remove_all(dir);
}

SCENARIO(
  "two live sessions for one shard: while one streams and checkpoints, another connects, loses "
  "its lease and disconnects in a loop, and every record the first saw checkpointed is in the "
  "output",
  "[kcl][mld]") {
  const auto dir = std::filesystem::temp_directory_path()
                   / ("shardflow-mld-two-sessions-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  mld::server_config sc;
  file_flusher_config f;
  f.dir = dir;
  sc.worker.make_flusher = file_flusher::factory(f);
  sc.worker.log = [](const std::string&) {};
  sc.log = [](const std::string&) {};
  sc.worker.batch.flush_interval = std::chrono::milliseconds(0); // flush and checkpoint every batch
  sc.worker.batch.checkpoint_interval = std::chrono::milliseconds(0);
  running_server srv{sc};
  // Batches of about 100 KiB: a write that long is visible half done to another opener, which is
  // how a second writer of the same file cut records the first had synced and checkpointed.
  constexpr int batches = 100;
  constexpr int per_batch = 50;
  const std::string padding(2000, 'x');
  std::atomic<bool> a_done{false};
  std::atomic<int> b_sessions{0};
  std::thread b_loop{[&] {
    // Session B: the same shard, leased and lost again and again while A runs (bounded).
    for (int i = 0; i < 5000 && !a_done.load(); ++i)
      if (lease_and_lose(srv->port()) == status_of("initialize") + status_of("leaseLost"))
        ++b_sessions;
  }};
  std::vector<std::string> confirmed; // data of every record a confirmed checkpoint covers
  {
    daemon_connection a{srv->port()};
    a.send(initialize_line);
    REQUIRE(a.next_line() == status_of("initialize"));
    for (int i = 0; i < batches; ++i) {
      std::string line = R"({"action":"processRecords","records":[)";
      std::vector<std::string> data;
      for (int k = 0; k < per_batch; ++k) {
        data.push_back(fmt::format("record-{:03}-{:02}-{}", i, k, padding));
        line += fmt::format(R"({}{{"data":"{}","partitionKey":"k","sequenceNumber":"{}",)"
                            R"("subSequenceNumber":0,"action":"record"}})",
                            k == 0 ? "" : ",", base64::encode(data.back()), i * per_batch + k + 1);
      }
      a.send(line + R"(],"millisBehindLatest":0})");
      auto next = a.next_line();
      if (next.find(R"("action":"checkpoint")") != std::string::npos) {
        a.send(next.substr(0, next.size() - 2) + R"(,"error":null})");
        confirmed.insert(confirmed.end(), data.begin(), data.end());
        next = a.next_line();
      }
      REQUIRE(next == status_of("processRecords"));
    }
    a_done = true;
    a.finish();
    CHECK(a.closed_silently());
  }
  b_loop.join();
  std::string output;
  for (const auto& e : std::filesystem::directory_iterator{dir}) {
    std::ifstream in{e.path()};
    output.append(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
  }
  INFO(b_sessions.load() << " sessions of B, " << confirmed.size() << " records confirmed");
  CHECK(b_sessions > 0);
  CHECK(confirmed.size() == std::size_t{batches * per_batch});
  std::set<std::string> found; // the data of every whole record line
  for (std::size_t at = 0; (at = output.find("\"d\":\"record-", at)) != std::string::npos;) {
    at += 5;
    found.insert(output.substr(at, output.find('"', at) - at));
  }
  std::size_t missing = 0;
  for (const auto& d : confirmed)
    missing += found.count(d) == 0 ? 1 : 0;
  CHECK(missing == 0);
  std::filesystem::remove_all(dir);
}

SCENARIO("a session whose line passes the server's line limit fails and closes its connection",
         "[kcl][mld]") {
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.line.max_line_bytes = 200;
  running_server srv{sc};
  daemon_connection daemon{srv->port()};
  // A record line of 300 characters and more: past the limit, never answered.
  const auto got = answers_to(daemon, {records_line(std::string(300, 'A'), 1)});
  CHECK(got == status_of("initialize"));
  daemon_connection next{srv->port()};
  CHECK(real_session_works(next));
}

SCENARIO("before initialize only short lines are accepted, after it lines up to the line limit",
         "[kcl][mld]") {
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.handshake_line_bytes = 1000;
  running_server srv{sc};
  {
    daemon_connection stranger{srv->port()};
    stranger.send(std::string(5000, ' ') + initialize_line); // past 1,000 bytes before initialize
    CHECK(stranger.closed_silently());
  }
  daemon_connection daemon{srv->port()};
  // After initialize, a batch of 5,000 bytes and more is a line like any other.
  CHECK(answers_to(daemon, {records_line(std::string(5000, 'A'), 1)}) == statuses(1));
}
