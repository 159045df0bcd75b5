#include "adapters/local_stream.hpp"

#include <filesystem>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.hpp"
#include <unistd.h>

#include "flushers/error.hpp"
#include "flushers/record_line.hpp"

using namespace shardflow;
using shardflow::testing::temp_dir;
namespace fs = std::filesystem;

namespace {


stream_record rec(const std::string& key, const std::string& data) {
  stream_record x;
  x.partition_key = key;
  x.data = data;
  return x;
}

std::vector<std::string> data_of(const record_batch& b) {
  std::vector<std::string> result;
  for (auto& x : b)
    result.push_back(x.data);
  return result;
}

} // namespace

SCENARIO("routing follows the MD5 of the partition key over the hash-key space",
         "[adapters][local_stream]") {
  // MD5("") = d41d8cd9..., 0xd4 / 256 = 0.83: the last of 4 ranges, the first of 1.
  CHECK(local::route("", 4) == 3);
  CHECK(local::route("", 1) == 0);
  // MD5("a") = 0cc175b9...: 0x0c / 256 = 0.05, the first range of 4 and of 16.
  CHECK(local::route("a", 4) == 0);
  CHECK(local::route("a", 16) == 0);
  // MD5("b") = 92eb5ffe...: 0x92 / 256 = 0.57: range 2 of 4.
  CHECK(local::route("b", 4) == 2);
  std::map<std::size_t, int> counts;
  for (int i = 0; i < 8000; ++i)
    ++counts[local::route("key-" + std::to_string(i), 8)];
  REQUIRE(counts.size() == 8);
  for (auto& [shard, n] : counts)
    CHECK(n > 800); // roughly even: 1,000 expected each
}

SCENARIO("a file source reads records with their byte offsets and replays after a checkpoint",
         "[adapters][local_stream]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    local::stream_writer w{stream};
    for (int i = 0; i < 5; ++i)
      w.append(rec("k", "r" + std::to_string(i)));
    w.flush();
  }
  local::file_source src{stream.shard_file(0), "shard-00000", {}};
  src.rewind(std::nullopt);
  auto a = src.read(2);
  REQUIRE(a.size() == 2);
  CHECK(data_of(a) == std::vector<std::string>{"r0", "r1"});
  CHECK(a[0].sequence.base == sequence_base{0});
  auto b = src.read(100);
  CHECK(data_of(b) == std::vector<std::string>{"r2", "r3", "r4"});
  CHECK(src.at_end());
  WHEN("it rewinds after the second record") {
    src.rewind(a[1].sequence);
    THEN("it continues with the third") {
      CHECK(data_of(src.read(1)) == std::vector<std::string>{"r2"});
      CHECK_FALSE(src.at_end());
    }
  }
  WHEN("the checkpoint lies beyond the file") {
    sequence_number far;
    far.base = sequence_base{1'000'000};
    CHECK_THROWS_WITH(src.rewind(far), Catch::Contains("beyond the end of the file"));
  }
}

SCENARIO("a following source waits for whole lines", "[adapters][local_stream]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  local::file_source_config cfg;
  cfg.follow = true;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  CHECK(src.read(10).empty());
  CHECK_FALSE(src.at_end());
  std::string line;
  append_line(line, rec("k", "late"));
  {
    std::ofstream out{stream.shard_file(0), std::ios::app};
    out << line.substr(0, 5); // half a line
  }
  CHECK(src.read(10).empty());
  {
    std::ofstream out{stream.shard_file(0), std::ios::app};
    out << line.substr(5);
  }
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"late"});
  CHECK_FALSE(src.at_end());
}

SCENARIO("bad lines stop the shard or go to the dead-letter file", "[adapters][local_stream]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    std::string good;
    append_line(good, rec("k", "before"));
    out << good << "{oops\n";
    good.clear();
    append_line(good, rec("k", "after"));
    out << good;
  }
  auto problems = std::make_shared<local::input_problems>();
  GIVEN("the stop policy") {
    local::file_source_config cfg;
    cfg.problems = problems;
    local::file_source src{stream.shard_file(0), "shard-00000", cfg};
    src.rewind(std::nullopt);
    CHECK(data_of(src.read(10)) == std::vector<std::string>{"before"});
    CHECK(src.at_end());
    REQUIRE(problems->all().size() == 1);
    CHECK_THAT(problems->all()[0], Catch::Contains("shard-00000.ndjson:2: not a JSON object"));
  }
  GIVEN("the dead-letter policy") {
    local::file_source_config cfg;
    cfg.problems = problems;
    cfg.on_bad_input = local::bad_input_policy::dead_letter;
    cfg.dead_letter_dir = dir.path / "dlq";
    local::file_source src{stream.shard_file(0), "shard-00000", cfg};
    src.rewind(std::nullopt);
    CHECK(data_of(src.read(10)) == std::vector<std::string>{"before", "after"});
    std::ifstream dlq{dir.path / "dlq" / "shard-00000.ndjson"};
    std::string moved;
    std::getline(dlq, moved);
    CHECK(moved == "{oops");
    CHECK(problems->dead_letters() == 1);
  }
}

SCENARIO("a stream directory knows its shards and refuses a mismatch", "[adapters][local_stream]") {
  temp_dir dir;
  CHECK_FALSE(local::stream_dir::exists(dir.path / "s"));
  CHECK_THROWS_WITH(local::stream_dir::open(dir.path / "s"), Catch::Contains("is not a local stream"));
  auto s = local::stream_dir::create(dir.path / "s", 3);
  CHECK(local::stream_dir::open(dir.path / "s").shards() == 3);
  CHECK(s.shard_file(2).filename() == "shard-00002.ndjson");
  CHECK_THROWS_WITH(local::stream_dir::create(dir.path / "s", 4), Catch::Contains("already has 3"));
}

SCENARIO("a finite source stops before a line that is not finished", "[adapters][local_stream]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    std::string good;
    append_line(good, rec("k", "whole"));
    out << good << "{\"k\":\"k\",\"d\":\"half"; // a writer is still at work
  }
  auto problems = std::make_shared<local::input_problems>();
  local::file_source_config cfg;
  cfg.problems = problems;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"whole"});
  CHECK(src.at_end());
  REQUIRE(problems->all().size() == 1);
  CHECK_THAT(problems->all()[0], Catch::Contains(":2: the file ends in the middle of a line"));
}
