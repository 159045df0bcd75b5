// bench/mld_bench.cpp - MB/s of daemon input through the MultiLangDaemon worker, beside the JSON
// parser alone on the same lines.
//
// Input: processRecords lines of 500 records with 100-byte data (base64 in the JSON), like a daemon
// sends them: plain; with every record a KPL aggregate of 10 user records of 10 bytes (100 bytes of
// data per record, the hardest case per byte); and with aggregates of 10 user records of 100 bytes.
// - subject:  the whole stdio worker path minus the pipe: line framing, JSON (simdjson's stage 1 and
//             the parser's processRecords walk on AVX2 CPUs, the simdjson DOM otherwise),
//             base64, KPL unpacking, the batch processor with a null flusher, a checkpoint exchange
//             per batch (answered in memory) and the status line;
// Targets (issue 16): the plain row >= 0.6x the baseline, the KPL rows >= 0.3x.
// - baseline: simdjson parsing the same lines and touching every record's fields, nothing else.
// Prints the median of several runs, the spread, and the ratio. Not a test, but every worker run
// must end cleanly and checkpoint once per processRecords line, the last at the last record, and
// the baseline must read every record; otherwise the bench prints why and no figure (a
// `FAILED<TAB>row<TAB>why` line), and exits 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include <shardflow/flushers/base64.hpp>
#include <shardflow/flushers/null_flusher.hpp>
#include <shardflow/kcl/kpl.hpp>
#include <shardflow/kcl/mld_protocol.hpp>
#include <shardflow/kcl/mld_worker.hpp>

using namespace shardflow;
using bench_clock = std::chrono::steady_clock;

namespace {

// Feeds prepared lines and answers checkpoint requests at once, as a daemon would.
class memory_io final : public mld::line_io {
public:
  explicit memory_io(const std::vector<std::string>& lines) : lines_(lines) {
  }
  std::optional<std::string_view> read_line() override {
    if (!replies_.empty()) {
      current_ = std::move(replies_.front());
      replies_.pop_front();
      current_.reserve(current_.size() + 64);
      return std::string_view{current_};
    }
    if (next_ >= lines_.size())
      return std::nullopt;
    return std::string_view{lines_[next_++]};
  }
  bool padded() const noexcept override {
    return true; // every prepared line has spare capacity (make_lines)
  }
  bool write_line(const std::string& line) override {
    if (line.rfind("{\"action\":\"checkpoint\"", 0) == 0) {
      replies_.push_back(line.substr(0, line.size() - 1) + ",\"error\":null}");
      last_checkpoint_ = line;
      ++checkpoints_;
    }
    return true;
  }

  /// The last checkpoint request the worker wrote.
  const std::string& last_checkpoint() const noexcept {
    return last_checkpoint_;
  }

  /// How many checkpoint requests the worker wrote.
  std::size_t checkpoints() const noexcept {
    return checkpoints_;
  }

private:
  const std::vector<std::string>& lines_;
  std::size_t next_ = 0;
  std::deque<std::string> replies_;
  std::string current_;
  std::string last_checkpoint_;
  std::size_t checkpoints_ = 0;
};

// `user_bytes` 0: plain records of 100 bytes; otherwise aggregates of 10 user records of that size.
std::vector<std::string> make_lines(std::size_t batches, std::size_t user_bytes,
                                    std::size_t& bytes) {
  const std::string prefix = "4959033827149025660855969253836157109592157598";
  std::vector<std::string> lines;
  lines.push_back(
    R"({"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})");
  std::uint64_t seq = 0;
  char digits[24];
  for (std::size_t b = 0; b < batches; ++b) {
    std::string line = R"({"action":"processRecords","records":[)";
    for (int r = 0; r < 500; ++r) {
      std::string data;
      if (user_bytes > 0) {
        kpl::aggregator agg;
        for (int u = 0; u < 10; ++u)
          agg.add("user-" + std::to_string((seq + u) % 97),
                  std::string(user_bytes, static_cast<char>('a' + u)));
        data = agg.build();
      } else {
        data.assign(100, static_cast<char>('a' + r % 26));
      }
      std::snprintf(digits, sizeof digits, "%010llu", static_cast<unsigned long long>(seq++));
      line += (r ? "," : "");
      line
        += R"({"data":")" + base64::encode(data) + R"(","partitionKey":"pk-)" + std::to_string(r)
           + R"(","sequenceNumber":")" + prefix + digits
           + R"(","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"})";
    }
    line += R"(],"millisBehindLatest":0})";
    line.reserve(line.size() + 64);
    lines.push_back(std::move(line));
  }
  lines.push_back(R"({"action":"leaseLost"})");
  bytes = 0;
  for (auto& l : lines)
    bytes += l.size() + 1;
  return lines;
}

// The sequence number of the last record make_lines writes for `batches` batches.
std::string last_sequence(std::size_t batches) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%010llu",
                static_cast<unsigned long long>(batches * 500 - 1));
  return std::string{"4959033827149025660855969253836157109592157598"} + digits;
}

// Prints why a side failed (on stderr, and a `FAILED<TAB>row<TAB>why` line) and exits 1: a failed
// run has no figure.
[[noreturn]] void fail(const char* row, const std::string& why) {
  std::fprintf(stderr, "mld_bench: %s: %s; no figure\n", row, why.c_str());
  std::printf("FAILED\t%s\t%s\n", row, why.c_str());
  std::exit(1);
}

// Returns the seconds the worker took; fails the bench when the worker did not end cleanly, did
// not checkpoint once per processRecords line or not last at the last record.
double run_worker(const std::vector<std::string>& lines, std::size_t batches, const char* row) {
  memory_io io{lines};
  mld::worker_config cfg;
  cfg.make_flusher = null_flusher::factory(1000);
  cfg.batch.flush_interval = std::chrono::milliseconds(0);
  cfg.batch.checkpoint_interval = std::chrono::milliseconds(0);
  cfg.log = [](mld::log_level, std::string_view) {};
  mld::worker w{io, cfg};
  const auto start = bench_clock::now();
  const auto rc = w.run();
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  if (rc != 0)
    fail(row, "the worker failed (exit code " + std::to_string(rc) + ")");
  if (io.last_checkpoint().find("\"" + last_sequence(batches) + "\"") == std::string::npos)
    fail(row, "the worker did not checkpoint at the last record");
  if (io.checkpoints() != batches)
    fail(row, "the worker checkpointed " + std::to_string(io.checkpoints()) + " times for "
                + std::to_string(batches) + " processRecords lines");
  return secs;
}

// Returns the seconds simdjson took to parse the lines and touch each record's fields; fails the
// bench unless it read every record (500 per processRecords line).
double run_parse_only(const std::vector<std::string>& lines, std::size_t batches, const char* row) {
  simdjson::dom::parser parser;
  std::size_t touched = 0;
  std::size_t records = 0;
  const auto start = bench_clock::now();
  for (auto& l : lines) {
    simdjson::dom::element doc;
    if (parser.parse(l).get(doc))
      continue;
    simdjson::dom::array xs;
    if (doc["records"].get(xs))
      continue;
    for (auto r : xs) {
      std::string_view data;
      std::string_view seq;
      if (!r["data"].get(data) && !r["sequenceNumber"].get(seq)) {
        touched += data.size() + seq.size();
        ++records;
      }
    }
  }
  const auto secs = std::chrono::duration<double>(bench_clock::now() - start).count();
  if (records != batches * 500 || touched == 0)
    fail(row, "the parse-only baseline read " + std::to_string(records) + " of "
                + std::to_string(batches * 500) + " records");
  return secs;
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::printf(
    "MLD worker path vs. JSON parsing alone; processRecords lines of 500 records; %d runs\n\n",
    runs);
  std::printf("%-26s %10s %18s %18s %8s\n", "input", "MB", "worker MB/s", "parse-only MB/s",
              "ratio");
  const std::string only = argc > 2 ? argv[2] : "";
  struct input {
    const char* row;
    const char* name;
    const char* only;
    std::size_t user_bytes;
    std::size_t batches;
  };
  for (const input in : {input{"mld", "plain 100-byte records", "plain", 0, 400},
                         input{"mld-kpl", "KPL 10 x 10-byte records", "kpl", 10, 200},
                         input{"mld-kpl-100", "KPL 10 x 100-byte records", "kpl", 100, 40}}) {
    if (!only.empty() && only != in.only)
      continue;
    std::size_t bytes = 0;
    const auto lines = make_lines(in.batches, in.user_bytes, bytes);
    std::vector<double> w;
    std::vector<double> p;
    for (int i = 0; i < runs; ++i) {
      w.push_back(bytes / run_worker(lines, in.batches, in.row) / 1e6);
      p.push_back(bytes / run_parse_only(lines, in.batches, in.row) / 1e6);
    }
    auto [wmin, wmax] = std::minmax_element(w.begin(), w.end());
    auto [pmin, pmax] = std::minmax_element(p.begin(), p.end());
    std::printf("%-26s %10.1f %7.0f (%4.0f..%4.0f) %7.0f (%4.0f..%4.0f) %7.2fx\n", in.name,
                bytes / 1e6, median(w), *wmin, *wmax, median(p), *pmin, *pmax,
                median(w) / median(p));
    std::printf("ROW\t%s\t%.0f\t%.0f\tMB/s (target >= %s the parse-only baseline)\t%.0f..%.0f\n",
                in.row, median(w), median(p), in.user_bytes > 0 ? "0.3x" : "0.6x", *wmin, *wmax);
  }
  std::printf("\ntargets (issue 16): plain >= 0.6x the parse-only baseline, KPL rows >= 0.3x\n");
  return 0;
}
