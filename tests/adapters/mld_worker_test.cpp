#include "adapters/mld_worker.hpp"

#include <deque>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "flushers/base64.hpp"
#include "adapters/kpl.hpp"
#include "tests/support/recording_flusher.hpp"

using namespace shardflow;

namespace {

// The daemon's side: lines to read, and every line the worker wrote; checkpoints succeed.
class daemon_double final : public mld::line_io {
public:
  std::deque<std::string> to_worker;
  std::vector<std::string> from_worker;

  std::optional<std::string_view> read_line() override {
    if (to_worker.empty())
      return std::nullopt;
    line_ = std::move(to_worker.front());
    to_worker.pop_front();
    return std::string_view{line_};
  }

  bool write_line(const std::string& line) override {
    from_worker.push_back(line);
    if (line.find("\"action\":\"checkpoint\"") != std::string::npos)
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

SCENARIO("poison records among aggregates stay poison, and only they", "[adapters][mld]") {
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
  daemon.to_worker = {R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})",
                      batch, R"({"action":"shardEnded"})"};
  auto script = std::make_shared<testing::flusher_script>();
  mld::worker_config cfg;
  cfg.make_flusher = testing::recording_flusher::factory(script);
  cfg.log = [](const std::string&) {};
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
