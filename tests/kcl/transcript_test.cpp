// Plays KCL MultiLangDaemon transcripts through the real `shardflow mld` binary over pipes.
//
// A transcript (tests/kcl/transcripts/*.txt) is what the daemon sends and what the worker must
// answer, line by line:
//
//     # comment                       args: OPTIONS...   (command-line options of `shardflow mld`)
//     > LINE   the daemon sends LINE  < LINE   the worker must answer exactly LINE
//     close    the daemon closes stdin           exit: N   the worker's exit status
//
// After the script, stdin is closed; the worker must print nothing more and exit with N (over TCP,
// the connector exits 0, or 0 or 1 when N is not 0: it fails too if it sees the server close first).
//
// Every transcript is played twice: against `shardflow mld` over pipes, and against
// `shardflow mld-server` through `shardflow mld-connect` over TCP (a transcript with `mode: stdio`
// is played over pipes only, one with `mode: tcp` over TCP only). `$WORK` in the options is a fresh
// directory; `output-lines: N` checks that the files in $WORK/out hold N distinct lines at the end.
// Options without a --flusher get `--flusher null` (the protocol alone is under test).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

struct child {
  pid_t pid = -1;
  int in = -1;  // the worker's stdin
  int out = -1; // the worker's stdout
  std::string buf;

  // Reads one line (without newline) within 20 s; empty optional at EOF or timeout.
  std::optional<std::string> read_line() {
    for (;;) {
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        auto line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return line;
      }
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, 20'000) <= 0)
        return std::nullopt;
      char tmp[65536];
      auto n = ::read(out, tmp, sizeof tmp);
      if (n <= 0)
        return std::nullopt;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }

  void write_line(const std::string& line) {
    auto data = line + "\n";
    auto n = ::write(in, data.data(), data.size());
    REQUIRE(n == static_cast<ssize_t>(data.size()));
  }

  void close_input() {
    if (in >= 0)
      ::close(in);
    in = -1;
  }
};

child spawn(const std::vector<std::string>& all) {
  int to_child[2];
  int from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
  posix_spawn_file_actions_addclose(&fa, to_child[1]);
  posix_spawn_file_actions_addclose(&fa, from_child[0]);
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(const_cast<char*>(a.data()));
  argv.push_back(nullptr);
  child c;
  REQUIRE(posix_spawn(&c.pid, SHARDFLOW_BINARY, &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(to_child[0]);
  ::close(from_child[1]);
  c.in = to_child[1];
  c.out = from_child[0];
  return c;
}

std::vector<std::string> split_args(const std::string& text) {
  std::istringstream in{text};
  std::vector<std::string> result;
  std::string word;
  while (in >> word)
    result.push_back(word);
  return result;
}

std::size_t distinct_lines(const std::filesystem::path& dir) {
  std::set<std::string> seen;
  if (!std::filesystem::exists(dir))
    return 0;
  for (auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in{f.path()};
    std::string l;
    while (std::getline(in, l))
      seen.insert(l);
  }
  return seen.size();
}

void play(const std::filesystem::path& file, bool tcp) {
  std::ifstream in{file};
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  auto work = std::filesystem::temp_directory_path()
              / ("shardflow-mld-" + std::to_string(::getpid()) + "-" + file.stem().string()
                 + (tcp ? "-tcp" : "-stdio"));
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  std::vector<std::string> args;
  int expected_exit = 0;
  long expected_lines = -1;
  for (auto& l : lines) {
    if (l.rfind("args:", 0) == 0) {
      args = split_args(l.substr(5));
      for (auto& a : args)
        if (auto at = a.find("$WORK"); at != std::string::npos)
          a.replace(at, 5, work.string());
    }
    if (l.rfind("exit:", 0) == 0)
      expected_exit = std::stoi(l.substr(5));
    if (l.rfind("output-lines:", 0) == 0)
      expected_lines = std::stol(l.substr(13));
  }
  if (std::none_of(args.begin(), args.end(),
                   [](const std::string& a) { return a.rfind("--flusher", 0) == 0; })) {
    args.emplace_back("--flusher"); // the worker requires one; these transcripts keep nothing
    args.emplace_back("null");
  }
  ::signal(SIGPIPE, SIG_IGN);
  child server;
  std::vector<std::string> cmd = {SHARDFLOW_BINARY, "mld"};
  if (tcp) {
    const auto port_file = (work / "port").string();
    std::vector<std::string> srv = {SHARDFLOW_BINARY, "mld-server", "--port-file", port_file};
    srv.insert(srv.end(), args.begin(), args.end());
    server = spawn(srv);
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i)
      ::poll(nullptr, 0, 25); // the server is starting up
    REQUIRE(std::filesystem::exists(port_file));
    std::ifstream pf{port_file};
    std::string port;
    pf >> port;
    cmd = {SHARDFLOW_BINARY, "mld-connect", "127.0.0.1:" + port};
  } else {
    cmd.insert(cmd.end(), args.begin(), args.end());
  }
  auto c = spawn(cmd);
  std::size_t number = 0;
  for (auto& l : lines) {
    ++number;
    INFO(file.filename().string() << ":" << number);
    if (l.rfind("> ", 0) == 0) {
      c.write_line(l.substr(2));
    } else if (l.rfind("< ", 0) == 0) {
      auto got = c.read_line();
      REQUIRE(got.has_value());
      CHECK(*got == l.substr(2));
    } else if (l == "close") {
      c.close_input();
    }
  }
  c.close_input();
  auto extra = c.read_line();
  CHECK_FALSE(extra.has_value()); // nothing but the answers above on stdout
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  ::close(c.out);
  REQUIRE(WIFEXITED(status));
  if (tcp) {
    // The connector ends cleanly when the session does; when the session fails (exit N expected
    // over pipes) it may see the server close first and then fail too.
    if (expected_exit == 0)
      CHECK(WEXITSTATUS(status) == 0);
    else
      CHECK((WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1));
    ::kill(server.pid, SIGTERM);
    server.close_input();
    ::waitpid(server.pid, &status, 0);
    ::close(server.out);
  } else {
    CHECK(WEXITSTATUS(status) == expected_exit);
  }
  if (expected_lines >= 0)
    CHECK(static_cast<long>(distinct_lines(work / "out")) == expected_lines);
  std::filesystem::remove_all(work);
}

std::string mode_of(const std::filesystem::path& file) {
  std::ifstream in{file};
  std::string l;
  while (std::getline(in, l))
    if (l.rfind("mode:", 0) == 0)
      return l.substr(l.find_first_not_of(' ', 5));
  return "both";
}

} // namespace

SCENARIO("the worker answers every daemon transcript as the protocol requires",
         "[mld][transcript]") {
  std::vector<std::filesystem::path> files;
  for (auto& entry : std::filesystem::directory_iterator(SHARDFLOW_TRANSCRIPTS))
    if (entry.path().extension() == ".txt")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 8);
  for (auto& f : files) {
    const auto mode = mode_of(f);
    if (mode != "tcp")
      DYNAMIC_SECTION(f.filename().string() << " over pipes") {
        play(f, false);
      }
    if (mode != "stdio")
      DYNAMIC_SECTION(f.filename().string() << " over TCP") {
        play(f, true);
      }
  }
}
