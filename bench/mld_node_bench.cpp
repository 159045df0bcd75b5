// bench/mld_node_bench.cpp - `shardflow mld` against the official Node worker (npm aws-kcl), both
// driven over pipes by this fast fake daemon on the same recorded processRecords input.
//
// Usage: mld_node_bench SHARDFLOW AWS_KCL_DIR [RUNS]
// Input: one shard, processRecords lines of 500 and of 10,000 records of 100 bytes (base64 in the
// JSON), about 27 MB of lines each, then shardEnded. The fake daemon writes a line, answers every
// checkpoint request at once (the request echoed with "error":null), and reads until the status;
// the clock runs from the first processRecords to the last status (start-up excluded).
// - subject:  `shardflow mld --flusher null` checkpointing every batch (--checkpoint-interval 0);
// - baseline: bench/mld_node_bench.js on aws-kcl, decoding every record and checkpointing each
//             batch at its last record.
// Both sides must answer every line, checkpoint once per batch (at its last record) and at the
// shard end, and exit 0; otherwise no figure (`FAILED<TAB>row<TAB>why`) and exit 1. Without node or
// aws-kcl (tests/peers/setup.sh installs it into the peers cache) the rows read FAILED with
// "skipped: ..." and the bench exits 1.
// - floor:    this program as the least a worker can be (`--floor-worker`): it answers each line
//             after finding its last sequence number, and decodes nothing. Its MB/s is what the
//             pipes and the one-line-at-a-time protocol allow on this machine, a ceiling for any
//             worker; the `mld-node-floor-*` rows put it beside the Node worker (how far 10x is
//             within reach at all).
// MB/s counts the daemon's input lines. Target: the subject >= 10x the baseline. A second line gives
// MB per CPU second of each worker's process (start-up included, from wait4), a figure that a
// loaded machine blurs less than the wall clock: over pipes the worker mostly waits.
#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shardflow/flushers/base64.hpp>

extern char** environ;

namespace {

struct child {
  pid_t pid = -1;
  int in = -1;
  int out = -1;
  double cpu_seconds = 0; // user + system time of the child, set by finish()
  std::string buf;

  // One line (no newline) within 60 s; nothing at EOF or on a timeout.
  std::optional<std::string> read_line() {
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        auto line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return line;
      }
      char tmp[1 << 16];
      const auto n = ::read(out, tmp, sizeof tmp);
      if (n <= 0)
        return std::nullopt;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }

  bool write_all(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const auto n = ::write(in, s.data() + done, s.size() - done);
      if (n <= 0)
        return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Closes stdin and waits for the exit, killing the child after 60 s; records its CPU time.
  int finish() {
    if (in >= 0)
      ::close(in);
    in = -1;
    int status = 0;
    for (int i = 0; i < 6000; ++i) {
      rusage ru{};
      if (::wait4(pid, &status, WNOHANG, &ru) == pid) {
        cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
                      + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10'000);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
};

child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra) {
  int to[2];
  int from[2];
  if (::pipe(to) != 0 || ::pipe(from) != 0)
    std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from[1], 1);
  posix_spawn_file_actions_addclose(&fa, to[1]);
  posix_spawn_file_actions_addclose(&fa, from[0]);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store(env_extra);
  for (char** e = environ; *e; ++e)
    env_store.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_store)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  child c;
  if (posix_spawnp(&c.pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0)
    c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  ::close(to[0]);
  ::close(from[1]);
  c.in = to[1];
  c.out = from[0];
  return c;
}

std::string sequence_of(std::size_t n) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%012llu", static_cast<unsigned long long>(n));
  return std::string{"495903382714902566085596925383615710959215"} + digits;
}

// `batches` processRecords lines of `per_batch` records of 100 bytes.
std::vector<std::string> make_lines(std::size_t batches, std::size_t per_batch,
                                    std::size_t& bytes) {
  std::vector<std::string> lines;
  std::size_t seq = 0;
  bytes = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    std::string line = R"({"action":"processRecords","millisBehindLatest":0,"records":[)";
    for (std::size_t r = 0; r < per_batch; ++r) {
      const std::string data(100, static_cast<char>('a' + r % 26));
      line += (r ? "," : "");
      line += R"({"data":")" + shardflow::base64::encode(data) + R"(","partitionKey":"pk-)"
              + std::to_string(r % 97) + R"(","sequenceNumber":")" + sequence_of(seq++)
              + R"(","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0})";
    }
    line += "]}\n";
    bytes += line.size();
    lines.push_back(std::move(line));
  }
  return lines;
}

struct outcome {
  double seconds = 0;
  double cpu_seconds = 0; // the worker's whole process, start-up included
  std::string failure; // empty: the worker did everything it had to
};

// Plays one session against `c`: initialize, the lines, shardEnded; checks every answer.
outcome play(child& c, const std::vector<std::string>& lines, std::size_t per_batch) {
  outcome o;
  const auto fail = [&](std::string why) {
    o.failure = std::move(why);
    c.finish();
    return o;
  };
  if (c.pid < 0)
    return fail("could not start the worker");
  std::size_t checkpoints = 0;
  std::string last_at;
  // Reads until the status for `action`, answering checkpoints; false on anything else.
  const auto answer = [&](const char* action) {
    for (;;) {
      auto line = c.read_line();
      if (!line)
        return false;
      if (line->empty()) // aws-kcl writes a newline before each message
        continue;
      if (line->find(R"("action":"checkpoint")") != std::string::npos) {
        ++checkpoints;
        last_at = *line;
        line->pop_back();
        if (!c.write_all(*line + R"(,"error":null})" + "\n"))
          return false;
        continue;
      }
      return line->find(R"("action":"status")") != std::string::npos
             && line->find(action) != std::string::npos;
    }
  };
  if (!c.write_all(
        R"({"action":"initialize","shardId":"shardId-000000000000","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})"
        "\n")
      || !answer("initialize"))
    return fail("no status for initialize");
  const auto start = std::chrono::steady_clock::now();
  for (const auto& l : lines)
    if (!c.write_all(l) || !answer("processRecords"))
      return fail("no status for a processRecords line");
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (checkpoints != lines.size())
    return fail(std::to_string(checkpoints) + " checkpoints for " + std::to_string(lines.size())
                + " batches");
  if (last_at.find(sequence_of(lines.size() * per_batch - 1)) == std::string::npos)
    return fail("the last checkpoint is not at the last record: " + last_at.substr(0, 120));
  if (!c.write_all(R"({"action":"shardEnded"})"
                   "\n")
      || !answer("shardEnded") || checkpoints != lines.size() + 1)
    return fail("the shard end was not checkpointed");
  if (const int rc = c.finish(); rc != 0)
    o.failure = "the worker exited " + std::to_string(rc);
  o.cpu_seconds = c.cpu_seconds;
  return o;
}

// The floor worker: speaks the protocol and does nothing else. Reads stdin a block at a time;
// answers processRecords with a checkpoint at the line's last sequence number (found from the
// end), the shard end with a null checkpoint, every line with its status. Exits 0 at EOF.
int floor_worker() {
  std::vector<char> buf(1 << 22);
  std::size_t at = 0;      // start of the next line
  std::size_t scanned = 0; // bytes from `at` on known to hold no newline
  std::size_t end = 0;     // bytes read
  const auto next_line = [&]() -> std::optional<std::string_view> {
    for (;;) {
      if (auto* nl = static_cast<char*>(std::memchr(buf.data() + at + scanned, '\n',
                                                    end - at - scanned))) {
        std::string_view line{buf.data() + at, static_cast<std::size_t>(nl - buf.data()) - at};
        at += line.size() + 1;
        scanned = 0;
        return line;
      }
      scanned = end - at;
      if (at > 0) { // move the partial line to the front
        std::memmove(buf.data(), buf.data() + at, end - at);
        end -= at;
        at = 0;
      }
      if (end == buf.size())
        buf.resize(buf.size() * 2);
      const auto n = ::read(0, buf.data() + end, buf.size() - end);
      if (n <= 0)
        return std::nullopt;
      end += static_cast<std::size_t>(n);
    }
  };
  const auto say = [](const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const auto n = ::write(1, s.data() + done, s.size() - done);
      if (n <= 0)
        return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  };
  const auto action_of = [](std::string_view line) {
    constexpr std::string_view key = R"("action":")";
    const auto k = line.find(key);
    if (k == std::string_view::npos)
      return std::string{};
    const auto from = k + key.size();
    return std::string{line.substr(from, line.find('"', from) - from)};
  };
  while (auto line = next_line()) {
    const auto action = action_of(*line);
    std::string checkpoint;
    if (action == "processRecords") {
      constexpr std::string_view key = R"("sequenceNumber":")";
      const auto k = line->rfind(key);
      if (k == std::string_view::npos)
        return 1;
      const auto from = k + key.size();
      checkpoint = R"({"action":"checkpoint","sequenceNumber":")"
                   + std::string{line->substr(from, line->find('"', from) - from)}
                   + R"(","subSequenceNumber":0})";
    } else if (action == "shardEnded") {
      checkpoint = R"({"action":"checkpoint","sequenceNumber":null})";
    }
    if (!checkpoint.empty() && (!say(checkpoint + "\n") || !next_line()))
      return 1; // the daemon's answer to the checkpoint is read, not looked at
    if (!say(R"({"action":"status","responseFor":")" + action + "\"}\n"))
      return 1;
  }
  return 0;
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string{argv[1]} == "--floor-worker")
    return floor_worker();
  if (argc < 3) {
    std::fprintf(stderr, "usage: mld_node_bench SHARDFLOW AWS_KCL_DIR [RUNS]\n");
    return 2;
  }
  const std::string shardflow = argv[1];
  const std::string aws_kcl = argv[2];
  const int runs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  const auto script = std::string{SHARDFLOW_BENCH_DIR} + "/mld_node_bench.js";
  const char* rows[] = {"mld-node-500", "mld-node-10k"};
  const char* floor_rows[] = {"mld-node-floor-500", "mld-node-floor-10k"};
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string skip;
  if (std::system("node --version > /dev/null 2>&1") != 0)
    skip = "skipped: node is not installed";
  else if (!std::filesystem::exists(std::filesystem::path{aws_kcl} / "package.json"))
    skip = "skipped: no aws-kcl at " + aws_kcl + " (tests/peers/setup.sh installs it)";
  else if (!std::filesystem::exists(script))
    skip = "skipped: no " + script;
  if (!skip.empty()) {
    for (auto group : {rows, floor_rows})
      for (std::size_t i = 0; i < 2; ++i) {
        std::fprintf(stderr, "mld_node_bench: %s: %s; no figure\n", group[i], skip.c_str());
        std::printf("FAILED\t%s\t%s\n", group[i], skip.c_str());
      }
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::printf("shardflow mld vs. the Node worker (aws-kcl), one shard over pipes; %d runs\n\n",
              runs);
  std::printf("%-22s %8s %22s %12s %8s %12s\n", "input", "MB", "shardflow mld MB/s", "node MB/s",
              "ratio", "floor MB/s");
  bool failed = false;
  const std::pair<std::size_t, std::size_t> inputs[] = {{500, 200}, {10'000, 10}};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto [per_batch, batches] = inputs[i];
    std::size_t bytes = 0;
    const auto lines = make_lines(batches, per_batch, bytes);
    std::vector<double> subject;
    std::vector<double> baseline;
    std::vector<double> subject_cpu; // MB per CPU second of the worker process
    std::vector<double> baseline_cpu;
    std::vector<double> floor; // the floor worker, the same session
    std::string why;
    for (int r = 0; r < runs && why.empty(); ++r) {
      auto s = spawn({shardflow, "--log-level", "error", "mld", "--flusher", "null",
                      "--checkpoint-interval", "0", "--flush-interval", "0", "--batch-size",
                      "1000000", "--max-line", "1G"},
                     {});
      auto so = play(s, lines, per_batch);
      if (!so.failure.empty()) {
        why = "shardflow mld: " + so.failure;
        break;
      }
      auto n = spawn({"node", script}, {"BENCH_AWS_KCL=" + aws_kcl});
      auto no = play(n, lines, per_batch);
      if (!no.failure.empty()) {
        why = "the Node worker: " + no.failure;
        break;
      }
      auto f = spawn({self, "--floor-worker"}, {});
      auto fo = play(f, lines, per_batch);
      if (!fo.failure.empty()) {
        why = "the floor worker: " + fo.failure;
        break;
      }
      floor.push_back(bytes / fo.seconds / 1e6);
      subject.push_back(bytes / so.seconds / 1e6);
      baseline.push_back(bytes / no.seconds / 1e6);
      if (so.cpu_seconds > 0 && no.cpu_seconds > 0) {
        subject_cpu.push_back(bytes / so.cpu_seconds / 1e6);
        baseline_cpu.push_back(bytes / no.cpu_seconds / 1e6);
      }
    }
    if (!why.empty()) {
      std::fprintf(stderr, "mld_node_bench: %s: %s; no figure\n", rows[i], why.c_str());
      std::printf("FAILED\t%s\t%s\n", rows[i], why.c_str());
      std::printf("FAILED\t%s\t%s\n", floor_rows[i], why.c_str());
      failed = true;
      continue;
    }
    auto [lo, hi] = std::minmax_element(subject.begin(), subject.end());
    std::printf("%5zu records x %-4zu %8.1f %10.0f (%4.0f..%4.0f) %12.1f %7.1fx %12.0f\n",
                per_batch, batches, bytes / 1e6, median(subject), *lo, *hi, median(baseline),
                median(subject) / median(baseline), median(floor));
    if (!subject_cpu.empty()) // less sensitive to a loaded machine than the wall clock
      std::printf("%22s %8s %10.0f MB/CPU-s %17.1f MB/CPU-s %6.1fx (whole process)\n", "", "",
                  median(subject_cpu), median(baseline_cpu),
                  median(subject_cpu) / median(baseline_cpu));
    std::printf("ROW\t%s\t%.1f\t%.1f\tMB/s vs. the Node worker (target >= 10x)\t%.1f..%.1f\n",
                rows[i], median(subject), median(baseline), *lo, *hi);
    auto [flo, fhi] = std::minmax_element(floor.begin(), floor.end());
    std::printf("ROW\t%s\t%.1f\t%.1f\tMB/s, a worker that only answers (the pipes' ceiling) vs. "
                "the Node worker\t%.1f..%.1f\n",
                floor_rows[i], median(floor), median(baseline), *flo, *fhi);
  }
  std::printf("\ntarget: shardflow mld >= 10x the Node worker's MB/s; floor: no worker over these "
              "pipes goes faster\n");
  return failed ? 1 : 0;
}
