#include <shardflow/kcl/mld_worker.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include "tests/support/recording_flusher.hpp"
#include "tests/support/signal_dispositions.hpp"
#include "tests/support/temp_dir.hpp"
#include <shardflow/flushers/base64.hpp>
#include <shardflow/kcl/kpl.hpp>

using namespace shardflow;

namespace {

// The daemon's side: lines to read, and every line the worker wrote; checkpoints succeed (unless
// `echo` is off: then the test queues the replies itself).
class daemon_double final : public mld::line_io {
public:
  std::deque<std::string> to_worker;
  std::vector<std::string> from_worker;
  bool echo = true;

  std::optional<std::string_view> read_line() override {
    if (to_worker.empty())
      return std::nullopt;
    line_ = std::move(to_worker.front());
    to_worker.pop_front();
    return std::string_view{line_};
  }

  bool write_line(const std::string& line) override {
    from_worker.push_back(line);
    if (echo && line.find("\"action\":\"checkpoint\"") != std::string::npos)
      to_worker.push_front(line.substr(0, line.size() - 1) + ",\"error\":null}");
    return true;
  }

private:
  std::string line_;
};

std::string record(const std::string& data_base64, int seq) {
  return R"({"data":")" + data_base64 + R"(","partitionKey":"k","sequenceNumber":")"
         + std::to_string(1000 + seq) + R"(","subSequenceNumber":0,"action":"record"})";
}

std::string aggregate_of(const std::vector<std::string>& users) {
  kpl::aggregator agg;
  for (auto& u : users)
    agg.add("user-key", u);
  return base64::encode(agg.build());
}

} // namespace

SCENARIO("poison records among aggregates stay poison, and only they", "[kcl][mld]") {
  // poison, aggregate of 3, poison, plain, aggregate of 2, poison: the aggregates' user records
  // shift every later index, and the poison marks must shift with them.
  const std::vector<std::string> records = {
    record("!!", 0),
    record(aggregate_of({"a0", "a1", "a2"}), 1),
    record("not base64", 2),
    record(base64::encode("plain"), 3),
    record(aggregate_of({"b0", "b1"}), 4),
    record("?", 5),
  };
  std::string batch = R"({"action":"processRecords","records":[)";
  for (std::size_t i = 0; i < records.size(); ++i)
    batch += (i > 0 ? "," : "") + records[i];
  batch += R"(],"millisBehindLatest":0})";
  daemon_double daemon;
  daemon.to_worker = {
    R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})",
    batch, R"({"action":"shardEnded"})"};
  auto script = std::make_shared<testing::flusher_script>();
  mld::worker_config cfg;
  cfg.make_flusher = testing::recording_flusher::factory(script);
  cfg.log = [](mld::log_level, std::string_view) {};
  mld::worker w{daemon, cfg};
  REQUIRE(w.run() == 0);
  CHECK(script->added_data == std::vector<std::string>{"a0", "a1", "a2", "plain", "b0", "b1"});
  CHECK(w.stats().poison == 3);
  CHECK(w.stats().aggregates == 2);
  CHECK(w.stats().records == 9); // six user and plain records, three poison ones
  // The shard ends checkpointed: nothing, poison included, held the checkpoint back.
  REQUIRE(daemon.from_worker.size() >= 2);
  CHECK(daemon.from_worker.back() == R"({"action":"status","responseFor":"shardEnded"})");
}

namespace {

const std::string initialize_line
  = R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})";

std::string batch_of(const std::vector<std::string>& records) {
  std::string out = R"({"action":"processRecords","records":[)";
  for (std::size_t i = 0; i < records.size(); ++i)
    out += (i > 0 ? "," : "") + records[i];
  return out + R"(],"millisBehindLatest":0})";
}

std::string status_for(const std::string& action) {
  return R"({"action":"status","responseFor":")" + action + "\"}";
}

// A worker over a daemon double with a recording flusher, checkpointing after every batch.
struct session {
  daemon_double daemon;
  std::shared_ptr<testing::flusher_script> script = std::make_shared<testing::flusher_script>();
  std::vector<std::string> logs;
  std::vector<mld::log_level> levels; // of each line in `logs`
  mld::worker_config cfg;
  mld::worker_stats stats;

  session() {
    cfg.make_flusher = testing::recording_flusher::factory(script);
    cfg.log = [this](mld::log_level level, std::string_view s) {
      logs.emplace_back(s);
      levels.push_back(level);
    };
    cfg.sleep = [](std::chrono::milliseconds) {};
    cfg.batch.flush_interval = std::chrono::milliseconds{0};
    cfg.batch.checkpoint_interval = std::chrono::milliseconds{0};
  }

  int run(std::deque<std::string> lines) {
    daemon.to_worker = std::move(lines);
    mld::worker w{daemon, cfg};
    const int rc = w.run();
    stats = w.stats();
    return rc;
  }

  bool wrote(const std::string& line) const {
    return std::find(daemon.from_worker.begin(), daemon.from_worker.end(), line)
           != daemon.from_worker.end();
  }

  bool logged(const std::string& part) const {
    return std::any_of(logs.begin(), logs.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }

  bool logged(mld::log_level level, const std::string& part) const {
    for (std::size_t i = 0; i < logs.size(); ++i)
      if (levels[i] == level && logs[i].find(part) != std::string::npos)
        return true;
    return false;
  }
};

const std::string null_checkpoint
  = R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null})";

} // namespace

SCENARIO("a processRecords line that cannot be decoded fails the session unanswered",
         "[kcl][mld]") {
  session s;
  WHEN("it holds invalid UTF-8") {
    const std::string bad
      = "{\"data\":\"aGk=\",\"partitionKey\":\"\xff\",\"sequenceNumber\":\"1000\"}";
    CHECK(s.run({initialize_line, batch_of({bad}), R"({"action":"shardEnded"})"}) == 1);
  }
  WHEN("a record's subSequenceNumber is beyond 64 bits") {
    const std::string big
      = R"({"data":"aGk=","partitionKey":"k","sequenceNumber":"1000","subSequenceNumber":18446744073709551616})";
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 1), big})}) == 1);
  }
  WHEN("its records are nested deeper than 1024 levels") {
    CHECK(s.run({initialize_line, batch_of({std::string(1100, '[') + std::string(1100, ']')})})
          == 1);
  }
  CHECK(s.daemon.from_worker == std::vector<std::string>{status_for("initialize")});
  CHECK(s.script->added_data.empty());
}

SCENARIO("lines without a string action are ignored unanswered, logged once per kind and then "
         "rarely",
         "[kcl][mld]") {
  session s;
  std::deque<std::string> lines = {initialize_line};
  for (int i = 0; i < 25; ++i)
    lines.push_back(R"({"action":7,"records":[]})");
  lines.push_back(R"({"records":[]})");
  lines.push_back(batch_of({record("aGk=", 1)}));
  lines.push_back(R"({"action":"shardEnded"})");
  CHECK(s.run(lines) == 0);
  CHECK(s.stats.ignored_lines == 26);
  // Nothing answered for them: the initialize's status, then the batch's checkpoint and status.
  CHECK(s.daemon.from_worker
        == std::vector<std::string>{
          status_for("initialize"),
          R"({"action":"checkpoint","sequenceNumber":"1001","subSequenceNumber":0})",
          status_for("processRecords"), null_checkpoint, status_for("shardEnded")});
  CHECK(s.script->added_data == std::vector<std::string>{"hi"});
  const auto count = [&](const std::string& part) {
    return std::count_if(s.logs.begin(), s.logs.end(), [&](const std::string& l) {
      return l.find(part) != std::string::npos;
    });
  };
  // The first of a kind, then the 10th, 100th, ... (25 lines: logged twice).
  CHECK(count("an action that is not a string (a number)") == 2);
  CHECK(s.logged(mld::log_level::warning, "ignoring input line 2, which is an action that is not "
                                          "a string (a number): {\"action\":7"));
  CHECK(s.logged("ignoring input line 11, which is an action that is not a string (a number) (10 "
                 "such lines so far)"));
  CHECK(count("which is no action") == 1); // a kind of its own
}

SCENARIO("a shard's meter counts its sessions, records, checkpoints, errors by kind and lag",
         "[kcl][mld]") {
  auto meters = std::make_shared<mld::worker_meters>();
  const std::string batch = R"({"action":"processRecords","millisBehindLatest":42,"records":[)"
                            + record("aGk=", 1) + "," + record("!!", 2) + "]}";
  const std::string at_1002 = R"({"action":"checkpoint","sequenceNumber":"1002","subSequenceNumber":0)";
  const std::string at_end = R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null)";
  for (int run = 0; run < 2; ++run) {
    session s;
    s.cfg.meters = meters;
    s.daemon.echo = false;
    CHECK(s.run({initialize_line, batch, at_1002 + R"(,"error":"ThrottlingException"})",
                 at_1002 + R"(,"error":"Mystery"})", R"({"action":"shardEnded"})",
                 at_end + R"(,"error":null})"})
          == 0);
  }
  const auto all = meters->all();
  REQUIRE(all.size() == 1);
  CHECK(all[0].first == "shardId-1");
  const auto& m = *all[0].second;
  CHECK(m.sessions == 2);
  CHECK(m.flushing->records == 2); // the poison record reaches no flusher
  CHECK(m.flushing->bytes == 4);
  CHECK(m.flushing->flushes >= 2);
  CHECK(m.checkpoints == 2); // the shard ends
  CHECK(m.checkpoint_errors[mld::checkpoint_error_kind("ThrottlingException")] == 2);
  CHECK(m.checkpoint_errors[mld::checkpoint_error_kind("Mystery")] == 2);
  CHECK(mld::checkpoint_error_kind("Mystery") == mld::checkpoint_error_kinds.size() - 1);
  CHECK(m.checkpoint_errors[mld::checkpoint_error_kind("ShutdownException")] == 0);
  CHECK(m.millis_behind_latest == 42);
}

SCENARIO("a record without a usable sequence number fails the session", "[kcl][mld]") {
  session s;
  WHEN("the number is not decimal") {
    const std::string bad
      = R"({"data":"aGk=","partitionKey":"k","sequenceNumber":"12x","subSequenceNumber":0})";
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 1), bad})}) == 1);
  }
  WHEN("the record is not an object") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 1), "7"})}) == 1);
  }
  CHECK(s.daemon.from_worker == std::vector<std::string>{status_for("initialize")});
}

SCENARIO("a checkpoint reply is matched to its request", "[kcl][mld]") {
  session s;
  s.daemon.echo = false;
  const auto reply = [](const std::string& seq, const std::string& error) {
    return R"({"action":"checkpoint","sequenceNumber":")" + seq
           + R"(","subSequenceNumber":0,"error":)" + error + "}";
  };
  WHEN("the reply names another sequence number") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), reply("999", "null"),
                 R"({"action":"leaseLost"})"})
          == 1);
    CHECK_FALSE(s.wrote(status_for("processRecords")));
  }
  WHEN("another message comes instead of the reply") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), R"({"action":"shardEnded"})"})
          == 1);
    CHECK_FALSE(s.wrote(status_for("shardEnded")));
  }
  WHEN("the input ends before the reply") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)})}) == 1);
  }
  WHEN("the reply's error is empty") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), reply("1000", "\"\""),
                 R"({"action":"leaseLost"})"})
          == 0);
    CHECK(s.stats.checkpoints == 1);
    CHECK(s.stats.checkpoint_errors == 0);
  }
  WHEN("the reply's error is not a string") {
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), reply("1000", "42"),
                 R"({"action":"leaseLost"})"})
          == 0);
    CHECK(s.stats.checkpoint_errors == 1);
    CHECK(s.logged("failed with 42"));
  }
}

SCENARIO("records the daemon sends out of turn fail the session, and no shard end covers them",
         "[kcl][mld]") {
  session s;
  WHEN("records come before initialize") {
    CHECK(s.run({batch_of({record("aGk=", 0)}), initialize_line}) == 1);
    CHECK(s.daemon.from_worker.empty());
  }
  WHEN("records come after shutdownRequested") {
    CHECK(s.run({initialize_line, R"({"action":"shutdownRequested"})",
                 batch_of({record("aGk=", 0)}), R"({"action":"leaseLost"})"})
          == 1);
    CHECK_FALSE(s.wrote(status_for("processRecords")));
  }
  WHEN("shardEnded comes after leaseLost") {
    s.cfg.batch.flush_interval = std::chrono::hours{1};
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), R"({"action":"leaseLost"})",
                 R"({"action":"shardEnded"})"})
          == 1);
    CHECK_FALSE(s.wrote(null_checkpoint));
    CHECK_FALSE(s.wrote(status_for("shardEnded")));
  }
  WHEN("a second initialize comes") {
    s.cfg.batch.flush_interval = std::chrono::hours{1};
    CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), initialize_line,
                 R"({"action":"shardEnded"})"})
          == 1);
    CHECK_FALSE(s.wrote(null_checkpoint));
    CHECK(
      std::count(s.daemon.from_worker.begin(), s.daemon.from_worker.end(), status_for("initialize"))
      == 1);
  }
}

namespace {

// A file holding `text`, open for reading.
struct file_input {
  testing::temp_dir dir;
  int fd = -1;

  explicit file_input(const std::string& text) {
    std::filesystem::create_directories(dir.path);
    const auto path = dir.path / "in";
    std::ofstream{path, std::ios::binary} << text;
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
  }

  ~file_input() {
    ::close(fd);
  }
};

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in{file};
  std::vector<std::string> result;
  for (std::string l; std::getline(in, l);)
    result.push_back(l);
  return result;
}

} // namespace

SCENARIO("fd_line_io hands out lines with a buffer that grows with them, up to a limit",
         "[kcl][mld]") {
  GIVEN("short lines, CRLF, an empty line and a last line without newline") {
    file_input in{"a\r\n\nbc\nlast"};
    mld::fd_line_io io{in.fd, -1};
    CHECK(io.read_line() == std::string_view{"a"});
    CHECK(io.read_line() == std::string_view{""});
    CHECK(io.read_line() == std::string_view{"bc"});
    CHECK(io.read_line() == std::string_view{"last"});
    CHECK_FALSE(io.read_line());
    CHECK(io.capacity() < (std::size_t{1} << 16)); // not a 1 MiB buffer for a few bytes
  }
  GIVEN("a line of 3 MiB between short ones") {
    const std::string big(std::size_t{3} << 20, 'x');
    file_input in{"first\n" + big + "\nnext\n"};
    mld::fd_line_io io{in.fd, -1, {std::size_t{4} << 20}};
    CHECK(io.read_line() == std::string_view{"first"});
    CHECK(io.read_line() == std::string_view{big});
    CHECK(io.read_line() == std::string_view{"next"});
    CHECK(io.capacity() <= 2 * big.size() + (std::size_t{2} << 20));
  }
  GIVEN("a line longer than the limit") {
    file_input in{"short\n" + std::string(100, 'y') + "\nafter\n"};
    mld::fd_line_io io{in.fd, -1, {64}};
    CHECK(io.read_line() == std::string_view{"short"});
    CHECK_THROWS_WITH(io.read_line(), Catch::Contains("input line 2 is longer than 64 bytes")
                                        && Catch::Contains("--max-line"));
  }
  GIVEN("no newline in far more than the limit") {
    file_input in{std::string(100'000, 'z')};
    mld::fd_line_io io{in.fd, -1, {1000}};
    CHECK_THROWS_WITH(io.read_line(), Catch::Contains("input line 1 is longer than 1000 bytes"));
    CHECK(io.capacity() < 100'000); // it stopped reading early
  }
}

SCENARIO("a line past the limit fails the session", "[kcl][mld]") {
  file_input in{initialize_line + "\n" + batch_of({record("aGk=", 0), record("aGk=", 1)}) + "\n"};
  const int out = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(out >= 0);
  mld::fd_line_io io{in.fd, out, {200}};
  session s;
  mld::worker w{io, s.cfg};
  CHECK(w.run() == 1);
  CHECK(s.logged("input line 2 is longer than 200 bytes"));
  CHECK(s.script->added_data.empty());
  ::close(out);
}

SCENARIO("with a dead-letter directory, unusable and poison records are set aside there",
         "[kcl][mld]") {
  testing::temp_dir dir;
  session s;
  s.cfg.dead_letter_dir = dir.path / "dead";
  const std::string bad_sequence
    = R"({"data":"aGk=","partitionKey":"k","sequenceNumber":"12x","subSequenceNumber":0})";
  WHEN("a batch holds a good record, one without a usable position, a poison one and a number") {
    REQUIRE(
      s.run({initialize_line, batch_of({record("aGk=", 0), bad_sequence, record("!!", 2), "7"}),
             R"({"action":"shardEnded"})"})
      == 0);
    THEN(
      "the good record is flushed, the others are in the file, and the shard ends checkpointed") {
      CHECK(s.script->added_data == std::vector<std::string>{"hi"});
      CHECK(s.stats.dead_letters == 3);
      const auto letters = lines_of(dir.path / "dead" / "shardId-1.ndjson");
      REQUIRE(letters.size() == 3);
      CHECK_THAT(
        letters[0],
        Catch::StartsWith(R"({"shard":"shardId-1","reason":")")
          && Catch::EndsWith(
            R"(","sequenceNumber":"12x","subSequenceNumber":0,"partitionKey":"k","data":"aGk="})"));
      CHECK(
        letters[1]
        == R"({"shard":"shardId-1","reason":"its data is not valid base64","sequenceNumber":"1002","subSequenceNumber":0,"partitionKey":"k","data":"!!"})");
      CHECK(letters[2]
            == R"({"shard":"shardId-1","reason":"the record is not a JSON object","record":7})");
      CHECK(s.wrote(R"({"action":"checkpoint","sequenceNumber":"1002","subSequenceNumber":0})"));
      CHECK(s.wrote(null_checkpoint));
      CHECK(s.daemon.from_worker.back() == status_for("shardEnded"));
    }
  }
  WHEN("the dead-letter file cannot be written") {
    s.cfg.dead_letter_dir = "/proc/shardflow-no-dead-letters-here";
    CHECK(s.run({initialize_line, batch_of({record("!!", 0)})}) == 1);
    CHECK(s.logged("cannot open the dead-letter file /proc/shardflow-no-dead-letters-here"));
    CHECK_FALSE(s.wrote(status_for("processRecords")));
  }
}

SCENARIO("the worker's KPL limits reach the unpacking", "[kcl][mld]") {
  session s;
  s.cfg.kpl_limits.max_user_records = 2;
  REQUIRE(s.run({initialize_line,
                 batch_of({record(aggregate_of({"a0", "a1", "a2"}), 0),
                           record(aggregate_of({"b0", "b1"}), 1)}),
                 R"({"action":"leaseLost"})"})
          == 0);
  CHECK(s.stats.corrupt_aggregates == 1); // three user records are past the cap: one opaque record
  CHECK(s.stats.aggregates == 1);
  CHECK(s.script->added_data.size() == 3);
}

SCENARIO("the worker's lines go to its one sink with a level, prefixed with the shard",
         "[kcl][mld]") {
  session s;
  s.script->fail_on_data = {"boom"};
  CHECK(s.run({R"({"action":"initialize","shardId":"shardId-7","sequenceNumber":"TRIM_HORIZON"})",
               batch_of({record("!!", 0)}), batch_of({record("Ym9vbQ==", 1)})})
        == 1);
  CHECK(s.logged(mld::log_level::info, "shardId-7: initialized at TRIM_HORIZON"));
  CHECK(s.logged(mld::log_level::warning, "shardId-7: poison record at"));
  CHECK(s.logged(mld::log_level::error, "shardId-7: fatal: "));
  CHECK(s.logged(mld::log_level::error, "injected failure at boom"));
}

SCENARIO("the worker installs no signal handlers", "[kcl][mld]") {
  const testing::signal_dispositions before;
  session s;
  CHECK(s.run({initialize_line, batch_of({record("aGk=", 0)}), R"({"action":"shardEnded"})"}) == 0);
  CHECK(before.unchanged());
}

namespace {

// Keeps a pointer to every record it is offered and makes none durable until shutdown: records
// whose batch a refill overwrote would show other data at the end.
class pointer_keeping_flusher final : public flusher {
public:
  pointer_keeping_flusher(std::vector<std::pair<const stream_record*, std::string>>* kept,
                          std::size_t* overwritten)
    : kept_(kept), overwritten_(overwritten) {
  }
  add_result add(const stream_record& x, flush_token token) override {
    kept_->emplace_back(&x, x.data);
    tokens_.push_back(token);
    return add_result::added;
  }
  std::vector<flush_token> flush(flush_mode mode) override {
    if (mode != flush_mode::full)
      return {};
    for (const auto& [x, data] : *kept_)
      *overwritten_ += x->data != data ? 1 : 0;
    return std::move(tokens_);
  }
  std::vector<flush_token> heartbeat() override {
    return {};
  }
private:
  std::vector<std::pair<const stream_record*, std::string>>* kept_;
  std::size_t* overwritten_;
  std::vector<flush_token> tokens_;
};

} // namespace

SCENARIO("the worker refills a batch's records only once nothing holds them any more",
         "[kcl][mld]") {
  // Plain batches and batches of aggregates, none made durable before the shard ends: every batch
  // stays held, so each must get records of its own while the flusher still points at the others.
  std::vector<std::pair<const stream_record*, std::string>> kept;
  std::size_t overwritten = 0;
  session s;
  s.cfg.make_flusher = [&](const shard_id&) {
    return std::make_unique<pointer_keeping_flusher>(&kept, &overwritten);
  };
  std::deque<std::string> lines = {initialize_line};
  int seq = 0;
  for (int b = 0; b < 6; ++b) {
    std::vector<std::string> records;
    for (int r = 0; r < 3; ++r, ++seq)
      records.push_back(record(b % 2 == 0 ? base64::encode("batch " + std::to_string(b) + " record "
                                                            + std::to_string(r))
                                          : aggregate_of({"u" + std::to_string(seq), "v"}),
                               seq));
    lines.push_back(batch_of(records));
  }
  lines.push_back(R"({"action":"shardEnded"})");
  REQUIRE(s.run(lines) == 0);
  CHECK(kept.size() == 3 * 3 + 3 * 3 * 2);
  CHECK(overwritten == 0);
  CHECK(s.wrote(status_for("shardEnded")));
}
