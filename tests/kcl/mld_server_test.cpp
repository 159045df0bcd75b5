// An integration test: the server runs on threads of its own and real sockets (sessions block on
// them). The daemon's side is this test, over loopback TCP or a Unix socket. Waits are on observable
// state with deadlines; nothing sleeps a fixed time.
#include <shardflow/kcl/mld_server.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
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

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/support/recording_flusher.hpp"
#include "tests/support/signal_dispositions.hpp"
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

  // Whether the server resets the connection without another word (how it refuses one).
  bool reset_silently() {
    char c;
    const auto n = ::read(fd_, &c, 1);
    return buf_.empty() && n < 0 && errno == ECONNRESET;
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

// A server serving on a thread of its own until destroyed.
class running_server {
public:
  explicit running_server(mld::server_config sc)
    : srv_(std::move(sc)), serving_([this] { srv_.serve(stop_); }) {
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
  mld::server srv_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

mld::server_config quiet_config(std::shared_ptr<testing::flusher_script> script) {
  mld::server_config sc;
  sc.worker.make_flusher = testing::recording_flusher::factory(std::move(script));
  sc.log = [](mld::log_level, std::string_view) {};
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

SCENARIO("connections beyond max_connections are reset at once, the server's threads stay bounded, "
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
      // At once (nothing else would within the read limit), and reset: a connector fails even if
      // its daemon's side had ended already.
      CHECK(over.reset_silently());
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

namespace {

std::string initialize_at(const std::string& shard, const std::string& seq) {
  return R"({"action":"initialize","shardId":")" + shard + R"(","sequenceNumber":")" + seq
         + R"(","subSequenceNumber":0})";
}

std::string checkpoint_request(int seq) {
  return R"({"action":"checkpoint","sequenceNumber":")" + std::to_string(seq)
         + R"(","subSequenceNumber":0})" + "\n";
}

std::string checkpoint_reply(int seq) {
  return R"({"action":"checkpoint","sequenceNumber":")" + std::to_string(seq)
         + R"(","subSequenceNumber":0,"error":null})";
}

// Sends one record at `seq` and confirms the checkpoint the session asks for (every batch is
// flushed and checkpointed); returns whether the session answered as expected.
bool confirmed_batch(daemon_connection& daemon, const std::string& base64_data, int seq) {
  daemon.send(records_line(base64_data, seq));
  if (daemon.next_line() != checkpoint_request(seq))
    return false;
  daemon.send(checkpoint_reply(seq));
  return daemon.next_line() == status_of("processRecords");
}

// The lines a server logged, from any session thread.
struct captured_log {
  std::mutex mtx;
  std::vector<std::pair<mld::log_level, std::string>> lines;

  mld::log_sink sink() {
    return [this](mld::log_level level, std::string_view x) {
      std::lock_guard<std::mutex> guard{mtx};
      lines.emplace_back(level, std::string{x});
    };
  }

  bool has(mld::log_level level, const std::string& part) {
    std::lock_guard<std::mutex> guard{mtx};
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) {
      return l.first == level && l.second.find(part) != std::string::npos;
    });
  }
};

} // namespace

SCENARIO(
  "a session whose flusher fails closes its connection without answering the batch, having "
  "checkpointed nothing past what is durable, other sessions go on, and a new session for the "
  "shard (the daemon's re-lease) resumes from its last checkpoint",
  "[kcl][mld]") {
  auto script = std::make_shared<testing::flusher_script>();
  script->fail_on_data = {"c"}; // the flusher fails once, at the record c
  auto sc = quiet_config(script);
  sc.worker.batch.flush_interval = std::chrono::milliseconds(0); // flush and checkpoint every batch
  sc.worker.batch.checkpoint_interval = std::chrono::milliseconds(0);
  captured_log log;
  sc.log = log.sink();
  running_server srv{sc};
  daemon_connection other{srv->port()}; // another shard, leased throughout
  other.send(initialize_at("shardId-2", "TRIM_HORIZON"));
  REQUIRE(other.next_line() == status_of("initialize"));
  {
    daemon_connection daemon{srv->port()};
    daemon.send(initialize_line);
    REQUIRE(daemon.next_line() == status_of("initialize"));
    CHECK(confirmed_batch(daemon, "YQ==", 1)); // a
    CHECK(confirmed_batch(daemon, "Yg==", 2)); // b
    daemon.send(records_line("Yw==", 3));      // c: the flusher fails
    // Neither a checkpoint nor a status: the batch is never acknowledged, the connection closes.
    CHECK(daemon.closed_silently());
  }
  REQUIRE(eventually([&] { return srv->stats().failed == 1; }));
  CHECK(log.has(mld::log_level::error, "session-2 failed"));
  CHECK(log.has(mld::log_level::error, "injected failure at c"));
  CHECK(confirmed_batch(other, "eA==", 1)); // x: the other shard's session is untouched
  {
    // The daemon re-leases shardId-1 from its last checkpoint (2) and delivers c again.
    daemon_connection daemon{srv->port()};
    daemon.send(initialize_at("shardId-1", "2"));
    REQUIRE(daemon.next_line() == status_of("initialize"));
    CHECK(confirmed_batch(daemon, "Yw==", 3));
    daemon.send(R"({"action":"shardEnded"})");
    const std::string null_position = R"("sequenceNumber":null,"subSequenceNumber":null)";
    CHECK(daemon.next_line() == "{\"action\":\"checkpoint\"," + null_position + "}\n");
    daemon.send("{\"action\":\"checkpoint\"," + null_position + ",\"error\":null}");
    CHECK(daemon.next_line() == status_of("shardEnded"));
    daemon.finish();
    CHECK(daemon.closed_silently());
  }
  other.finish();
  CHECK(other.closed_silently());
  REQUIRE(eventually([&] { return srv->stats().active == 0; })); // the sessions' threads are done
  // Every checkpoint covered durable records only (a and b when c failed), and nothing was lost.
  CHECK(script->durable_data == std::vector<std::string>{"a", "b", "x", "c"});
  CHECK(script->flushers_made == 3);
  CHECK(srv->stats().failed == 1);
  CHECK(srv->stats().sessions == 3);
}

SCENARIO("a flusher factory that throws fails only its session", "[kcl][mld]") {
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.worker.make_flusher = [](const shard_id&) -> std::unique_ptr<flusher> {
    throw std::runtime_error("no flusher today");
  };
  captured_log log;
  sc.log = log.sink();
  running_server srv{sc};
  daemon_connection daemon{srv->port()};
  daemon.send(initialize_line);
  CHECK(daemon.closed_silently()); // not even initialize is answered
  REQUIRE(eventually([&] { return srv->stats().failed == 1; }));
  CHECK(log.has(mld::log_level::error, "no flusher today"));
}

SCENARIO("mld-connect's bridge installs no signal handlers and logs through its sink",
         "[kcl][mld]") {
  const testing::signal_dispositions before;
  captured_log log;
  CHECK(mld::connect_stdio_unix("/nonexistent-shardflow-dir/mld.sock", log.sink()) == 1);
  CHECK(mld::connect_stdio("127.0.0.1", 0, log.sink()) == 1); // port 0: nobody listens
  CHECK(before.unchanged());
  CHECK(log.has(mld::log_level::error, "cannot connect to unix:/nonexistent-shardflow-dir"));
  CHECK(log.has(mld::log_level::error, "cannot connect to 127.0.0.1:0"));
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
    const auto start_second = [&] { mld::server second{sc}; };
    CHECK_THROWS_WITH(start_second(), Catch::Contains("another server is listening"));
    daemon_connection daemon{path};
    CHECK(real_session_works(daemon));
  }
  CHECK_FALSE(std::filesystem::exists(path));
  std::ofstream{path} << "not a socket\n";
  const auto start = [&] { mld::server srv{sc}; };
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
  sc.log = [](mld::log_level, std::string_view) {};
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

SCENARIO("a client that vanishes fails its session without raising SIGPIPE in the server's host",
         "[kcl][mld]") {
  // The host does not ignore SIGPIPE here: a write to the vanished client must not kill it.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  struct sigaction old {};
  ::sigaction(SIGPIPE, &dfl, &old);
  auto closed = std::make_shared<std::promise<void>>();
  auto sc = quiet_config(std::make_shared<testing::flusher_script>());
  sc.worker.make_flusher = [gate = closed->get_future().share(),
                            script = std::make_shared<testing::flusher_script>()](
                             const shard_id&) -> std::unique_ptr<flusher> {
    // Answers initialize only once the client is gone (a bounded wait).
    gate.wait_for(std::chrono::seconds(30));
    return std::make_unique<testing::recording_flusher>(script);
  };
  running_server srv{sc};
  {
    daemon_connection daemon{srv->port()};
    std::string lines = initialize_line;
    for (int i = 0; i < 50; ++i)
      lines += "\n" + std::string{R"({"action":"ping"})"}; // each answered with a status
    daemon.send(lines);
  } // closed before any answer
  closed->set_value();
  CHECK(eventually([&] { return srv->stats().failed == 1 && srv->stats().active == 0; }));
  ::sigaction(SIGPIPE, &old, nullptr);
}
