#include <shardflow/local/local_stream.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include <sys/resource.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include "tests/support/file_size_limit.hpp"
#include "tests/support/temp_dir.hpp"
#include <unistd.h>

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/record_line.hpp>

using namespace shardflow;
using shardflow::testing::slurp;
using shardflow::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

stream_record rec(const std::string& key, const std::string& data) {
  stream_record x;
  x.partition_key = key;
  x.data = data;
  return x;
}

std::string line_of(const std::string& key, const std::string& data) {
  std::string out;
  append_line(out, rec(key, data));
  return out;
}

std::vector<std::string> data_of(const record_batch& b) {
  std::vector<std::string> result;
  for (auto& x : b)
    result.push_back(x.data);
  return result;
}

} // namespace

SCENARIO("routing follows the MD5 of the partition key over the hash-key space", "[local]") {
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
         "[local]") {
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
  const auto first_line = slurp(stream.shard_file(0)).find('\n') + 1;
  CHECK(a[0].sequence.base == sequence_base{first_line}); // where the second line starts
  auto b = src.read(100);
  CHECK(data_of(b) == std::vector<std::string>{"r2", "r3", "r4"});
  CHECK(src.at_end());
  CHECK_FALSE(src.stopped()); // the end of the input: the shard may checkpoint it
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

SCENARIO("a following source waits for whole lines", "[local]") {
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

SCENARIO("bad lines stop the shard or go to the dead-letter file", "[local]") {
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
    CHECK(src.stopped()); // not the end: the shard must not checkpoint its end
    REQUIRE(problems->all().size() == 1);
    CHECK_THAT(problems->all()[0], Catch::Contains("shard-00000.ndjson:2: not valid JSON"));
    CHECK_THAT(problems->stop_of("shard-00000").value_or(""),
               Catch::StartsWith(stream.shard_file(0).string() + ":2 (not valid JSON (")
                 && Catch::EndsWith(")"));
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
    const auto offset = line_of("k", "before").size();
    CHECK_THAT(slurp(dir.path / "dlq" / "shard-00000.context.ndjson"),
               Catch::StartsWith("{\"file\":\"" + stream.shard_file(0).string()
                                 + "\",\"offset\":" + std::to_string(offset)
                                 + ",\"line\":2,\"reason\":\"not valid JSON (")
                 && Catch::EndsWith(")\",\"bytes\":5,\"copy\":\"shard-00000.ndjson\",\"at\":0}\n"));
    CHECK(src.at_end());
    CHECK_FALSE(src.stopped());
    CHECK_FALSE(problems->stop_of("shard-00000"));
  }
}

SCENARIO("a stream directory knows its shards and refuses a mismatch", "[local]") {
  temp_dir dir;
  CHECK_FALSE(local::stream_dir::exists(dir.path / "s"));
  CHECK_THROWS_WITH(local::stream_dir::open(dir.path / "s"),
                    Catch::Contains("is not a local stream"));
  auto s = local::stream_dir::create(dir.path / "s", 3);
  CHECK(local::stream_dir::open(dir.path / "s").shards() == 3);
  CHECK(s.shard_file(2).filename() == "shard-00002.ndjson");
  CHECK_THROWS_WITH(local::stream_dir::create(dir.path / "s", 4), Catch::Contains("already has 3"));
}

SCENARIO("a stream that cannot be written while it is created fails as an I/O error and is no "
         "stream",
         "[local]") {
  temp_dir dir;
  {
    testing::file_size_limit limit{0}; // a full disk: no file can grow
    try {
      local::stream_dir::create(dir.path / "s", 2);
      FAIL("creating the stream did not fail");
    } catch (const error& e) {
      CHECK(e.code() == errc::io_failed);
      CHECK_THAT(e.what(), Catch::Contains("cannot write") && Catch::Contains("shardflow-stream"));
    }
  }
  CHECK_FALSE(local::stream_dir::exists(dir.path / "s"));
  CHECK(local::stream_dir::create(dir.path / "s", 2).shards() == 2); // once there is room
  CHECK(local::stream_dir::open(dir.path / "s").shards() == 2);
}

SCENARIO("a finite source stops before a line that is not finished", "[local]") {
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
  CHECK(src.stopped());
  REQUIRE(problems->all().size() == 1);
  CHECK_THAT(problems->all()[0], Catch::Contains(":2: the file ends in the middle of a line"));
  CHECK(problems->stop_of("shard-00000")
        == stream.shard_file(0).string() + ":2 (the file ends in the middle of a line)");
}

SCENARIO("a writer cuts the fragment a dead writer left before it appends", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "whole") << "{\"k\":\"k\",\"d\":\"to"; // a put that died mid-write
  }
  local::stream_writer w{stream};
  w.append(rec("k", "next"));
  w.flush();
  CHECK(slurp(stream.shard_file(0)) == line_of("k", "whole") + line_of("k", "next"));
}

SCENARIO("a writer whose write fails cuts its own partial write and fails as an I/O error",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    local::stream_writer w{stream};
    w.append(rec("k", "first"));
    w.flush();
  }
  const auto before = slurp(stream.shard_file(0));
  local::stream_writer w{stream};
  w.append(rec("k", std::string(400, 'x')));
  {
    testing::file_size_limit limit{before.size() + 100}; // the disk fills up during the write
    try {
      w.flush();
      FAIL("the write did not fail");
    } catch (const error& e) {
      CHECK(e.code() == errc::io_failed);
      CHECK_THAT(e.what(), Catch::Contains("cannot write"));
    }
  }
  CHECK(slurp(stream.shard_file(0)) == before);
}

SCENARIO(
  "a writer whose write fails keeps the whole lines that got out, which a reader may have taken",
  "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  local::stream_writer w{stream};
  std::string lines;
  for (int i = 0; i < 10; ++i) {
    w.append(rec("k", "record " + std::to_string(i) + std::string(40, '.')));
    lines += line_of("k", "record " + std::to_string(i) + std::string(40, '.'));
  }
  {
    testing::file_size_limit limit{lines.size()
                                   / 2}; // the disk fills up in the middle of the fifth line
    CHECK_THROWS_AS(w.flush(), error);
  }
  const auto after = slurp(stream.shard_file(0));
  CHECK(!after.empty());
  CHECK(after.back() == '\n');
  CHECK(lines.compare(0, after.size(), after) == 0); // whole lines of the write, in order
  CHECK(after.size() < lines.size());
}

SCENARIO("a following reader never takes a fragment that a writer cut and wrote again", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "whole") << "{\"k\":\"k\",\"d\":\"to";
  }
  local::file_source_config cfg;
  cfg.follow = true;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"whole"});
  CHECK(src.read(10).empty()); // the fragment is buffered, waiting for its newline
  {
    local::stream_writer w{stream};
    w.append(rec("k", "new"));
    w.flush();
  }
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"new"});
}

SCENARIO("a line longer than the limit is bad input, moved aside piece by piece under dead-letter",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  const std::string huge = "{\"k\":\"k\",\"d\":\"" + std::string(3 << 20, 'y') + "\"}"; // 3 MiB
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "before") << huge << "\n" << line_of("k", "after");
  }
  auto problems = std::make_shared<local::input_problems>();
  local::file_source_config cfg;
  cfg.problems = problems;
  cfg.max_line_bytes = 100;
  GIVEN("the stop policy") {
    local::file_source src{stream.shard_file(0), "shard-00000", cfg};
    src.rewind(std::nullopt);
    CHECK(data_of(src.read(10)) == std::vector<std::string>{"before"});
    CHECK(src.at_end());
    CHECK(src.stopped());
    REQUIRE(problems->stops().size() == 1);
    CHECK_THAT(problems->stops()[0],
               Catch::Contains("shard-00000.ndjson:2: the line is longer than 100 bytes"));
    CHECK(problems->stop_of("shard-00000")
          == stream.shard_file(0).string() + ":2 (the line is longer than 100 bytes)");
  }
  GIVEN("the dead-letter policy") {
    cfg.on_bad_input = local::bad_input_policy::dead_letter;
    cfg.dead_letter_dir = dir.path / "dlq";
    local::file_source src{stream.shard_file(0), "shard-00000", cfg};
    src.rewind(std::nullopt);
    std::vector<std::string> got;
    for (int i = 0; i < 10 && !src.at_end(); ++i)
      for (auto& d : data_of(src.read(10)))
        got.push_back(d);
    CHECK(got == std::vector<std::string>{"before", "after"});
    CHECK(slurp(dir.path / "dlq" / "shard-00000.ndjson") == huge + "\n");
    CHECK(slurp(dir.path / "dlq" / "shard-00000.context.ndjson")
          == "{\"file\":\"" + stream.shard_file(0).string()
               + "\",\"offset\":" + std::to_string(line_of("k", "before").size())
               + ",\"line\":2,\"reason\":\"the line is longer than 100 bytes\",\"bytes\":"
               + std::to_string(huge.size()) + ",\"copy\":\"shard-00000.ndjson\",\"at\":0}\n");
    CHECK(problems->dead_letters() == 1);
    CHECK(problems->stops().empty());
  }
}

SCENARIO("a file truncated under a reader stops its shard without a checkpoint past the end",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "r0") << line_of("k", "r1") << line_of("k", "r2");
  }
  auto problems = std::make_shared<local::input_problems>();
  local::file_source_config cfg;
  cfg.problems = problems;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  CHECK(data_of(src.read(3)) == std::vector<std::string>{"r0", "r1", "r2"});
  REQUIRE(::truncate(stream.shard_file(0).c_str(), 5) == 0);
  try {
    auto more = src.read(10);
    FAIL("the truncation went unnoticed; read " << more.size() << " records");
  } catch (const error& e) {
    CHECK(e.code() == errc::bad_input);
    CHECK_THAT(e.what(), Catch::Contains("shorter than the"));
  }
  REQUIRE(problems->stops().size() == 1);
  CHECK_THAT(problems->stops()[0], Catch::Contains("truncated or replaced"));
}

SCENARIO("a checkpoint beyond the end of the file stops the shard as bad input", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "r0");
  }
  auto problems = std::make_shared<local::input_problems>();
  local::file_source_config cfg;
  cfg.problems = problems;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  sequence_number far;
  far.base = sequence_base{1'000};
  CHECK_NOTHROW(src.rewind(far));
  CHECK(src.read(10).empty());
  CHECK(src.at_end());
  CHECK(src.stopped());
  REQUIRE(problems->stops().size() == 1);
  CHECK_THAT(problems->stops()[0],
             Catch::Contains("the checkpoint (byte 1000) lies beyond the end"));
  CHECK(problems->stop_of("shard-00000")
        == stream.shard_file(0).string() + " (checkpoint beyond the end of the file)");
}

SCENARIO("dead letters of a shard id with slashes stay in the dead-letter directory", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << "{oops\n";
  }
  local::file_source_config cfg;
  cfg.on_bad_input = local::bad_input_policy::dead_letter;
  cfg.dead_letter_dir = dir.path / "dlq";
  local::file_source src{stream.shard_file(0), "../x", cfg};
  src.rewind(std::nullopt);
  CHECK(src.read(10).empty());
  CHECK_FALSE(fs::exists(dir.path / "x.ndjson"));
  CHECK(slurp(dir.path / "dlq" / "%2E.%2Fx.ndjson") == "{oops\n");
}

SCENARIO("a record line longer than a read chunk is read whole, and replayed after", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  const std::string big(5 << 20, 'z'); // five read chunks
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", big) << line_of("k", "after");
  }
  local::file_source src{stream.shard_file(0), "shard-00000", {}};
  src.rewind(std::nullopt);
  auto a = src.read(1);
  REQUIRE(a.size() == 1);
  CHECK(a[0].data == big);
  src.rewind(a[0].sequence);
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"after"});
}

SCENARIO("input problems remember where each shard stopped last, and each stop once", "[local]") {
  local::input_problems p;
  p.report("s/shard-00000.ndjson:3: not a JSON object (sent to the dead-letter file)");
  p.report_stop("shard-00001", "s/shard-00001.ndjson:17: not a JSON object",
                "s/shard-00001.ndjson:17 (not a JSON object)");
  p.report_stop("shard-00001", "s/shard-00001.ndjson:17: not a JSON object",
                "s/shard-00001.ndjson:17 (not a JSON object)"); // restarted, stopped there again
  p.report_stop("shard-00002", "s/shard-00002.ndjson: something");
  CHECK(p.stop_of("shard-00001") == std::string{"s/shard-00001.ndjson:17 (not a JSON object)"});
  CHECK(p.stop_of("shard-00002") == std::string{"s/shard-00002.ndjson: something"});
  CHECK_FALSE(p.stop_of("shard-00000"));
  CHECK(p.stops().size() == 2);
  CHECK(p.all().size() == 3);
  p.report_stop("shard-00001", "s/shard-00001.ndjson:20: not valid UTF-8",
                "s/shard-00001.ndjson:20 (not valid UTF-8)");
  CHECK(p.stop_of("shard-00001") == std::string{"s/shard-00001.ndjson:20 (not valid UTF-8)"});
}

SCENARIO("a checkpoint is the end of its record's line: after the whole file it is the file's size",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "r0") << "\n" << line_of("k", "r1") << line_of("k", "r2"); // an empty line
  }
  const auto size = fs::file_size(stream.shard_file(0));
  auto problems = std::make_shared<local::input_problems>();
  local::file_source_config cfg;
  cfg.problems = problems;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  auto all = src.read(10);
  REQUIRE(all.size() == 3);
  CHECK(all[0].sequence.base == sequence_base{line_of("k", "r0").size()});
  CHECK(all[2].sequence.base == sequence_base{size}); // lag = size - checkpoint = 0
  CHECK(src.at_end());
  WHEN("it resumes at that checkpoint") {
    src.rewind(all[2].sequence);
    THEN("nothing comes again, and the shard ended (it did not stop)") {
      CHECK(src.read(10).empty());
      CHECK(src.at_end());
      CHECK_FALSE(src.stopped());
      CHECK(problems->all().empty());
    }
  }
  WHEN("it resumes at a checkpoint written before, the start of the last durable line") {
    sequence_number old;
    old.base = sequence_base{line_of("k", "r0").size() + 1};
    src.rewind(old);
    THEN("that one record comes again: at-least-once, never a loss") {
      CHECK(data_of(src.read(10)) == std::vector<std::string>{"r1", "r2"});
    }
  }
  WHEN("a checkpoint lies inside a line (the file was replaced by another)") {
    sequence_number inside;
    inside.base = sequence_base{3};
    src.rewind(inside);
    THEN("the shard stops at it, as bad input") {
      CHECK(src.read(10).empty());
      CHECK(src.stopped());
      REQUIRE(problems->stops().size() == 1);
      CHECK_THAT(problems->stops()[0],
                 Catch::Contains("the checkpoint (byte 3) is not at the start of a line (line 1)"));
      CHECK(problems->stop_of("shard-00000")
            == stream.shard_file(0).string() + " (checkpoint inside a line)");
    }
  }
}

SCENARIO("a following source resumed at its checkpoint takes the lines written after it",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "r0");
  }
  local::file_source_config cfg;
  cfg.follow = true;
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  auto a = src.read(10);
  REQUIRE(a.size() == 1);
  CHECK(a[0].sequence.base == sequence_base{fs::file_size(stream.shard_file(0))});
  src.rewind(a[0].sequence);
  CHECK(src.read(10).empty());
  {
    std::ofstream out{stream.shard_file(0), std::ios::app};
    out << line_of("k", "r1");
  }
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"r1"});
}

SCENARIO("each dead letter has a context line naming its file, offset, line, reason and copy",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 1);
  const std::string bad1 = "[1,2]";
  const std::string bad2 = "{\"k\":\"k\",\"t\":\"soon\",\"d\":\"x\"}"; // quotes in the reason
  {
    std::ofstream out{stream.shard_file(0)};
    out << line_of("k", "r0") << bad1 << "\n" << line_of("k", "r1") << bad2 << "\n";
  }
  local::file_source_config cfg;
  cfg.on_bad_input = local::bad_input_policy::dead_letter;
  cfg.dead_letter_dir = dir.path / "dlq";
  cfg.problems = std::make_shared<local::input_problems>();
  local::file_source src{stream.shard_file(0), "shard-00000", cfg};
  src.rewind(std::nullopt);
  CHECK(data_of(src.read(10)) == std::vector<std::string>{"r0", "r1"});
  // The copies, byte for byte, one a line.
  CHECK(slurp(dir.path / "dlq" / "shard-00000.ndjson") == bad1 + "\n" + bad2 + "\n");
  const auto file = stream.shard_file(0).string();
  const auto at1 = line_of("k", "r0").size();
  const auto at2 = at1 + bad1.size() + 1 + line_of("k", "r1").size();
  std::string expected;
  expected += "{\"file\":\"" + file + "\",\"offset\":" + std::to_string(at1)
              + ",\"line\":2,\"reason\":\"not a JSON object\",\"bytes\":5,"
                "\"copy\":\"shard-00000.ndjson\",\"at\":0}\n";
  expected += "{\"file\":\"" + file + "\",\"offset\":" + std::to_string(at2)
              + ",\"line\":4,\"reason\":\"\\\"t\\\" (the arrival time) is not an integer\","
                "\"bytes\":"
              + std::to_string(bad2.size()) + ",\"copy\":\"shard-00000.ndjson\",\"at\":"
              + std::to_string(bad1.size() + 1) + "}\n";
  CHECK(slurp(dir.path / "dlq" / "shard-00000.context.ndjson") == expected);
}

SCENARIO("a missing shard file is bad input naming the file and the stream's shard count",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 4);
  fs::remove(stream.shard_file(2));
  try {
    local::file_source src{stream.shard_file(2), "shard-00002", {}};
    FAIL("a source of a missing file was made");
  } catch (const error& e) {
    CHECK(e.code() == errc::bad_input);
    CHECK(std::string{e.what()}
          == stream.shard_file(2).string()
               + ": no such file; the stream's shardflow-stream says 4 shards");
  }
}

namespace {

// Returns the code stream_dir::open(dir) fails with, or "none"; for a user without rights on
// `dir`: a child process that drops root's rights when the test runs as root.
std::string open_code_without_rights(const fs::path& dir) {
  const auto code_of_open = [&] {
    try {
      local::stream_dir::open(dir);
    } catch (const error& e) {
      return std::string{to_string(e.code())};
    }
    return std::string{"none"};
  };
  fs::permissions(dir, fs::perms::none);
  if (::geteuid() != 0) {
    auto code = code_of_open();
    fs::permissions(dir, fs::perms::owner_all);
    return code;
  }
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(out[0]);
    const auto code = ::setgid(65534) == 0 && ::setuid(65534) == 0 ? code_of_open() : "setuid";
    static_cast<void>(::write(out[1], code.data(), code.size()));
    ::_exit(0);
  }
  ::close(out[1]);
  std::string code;
  char buf[64];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) != 0;) // until the child's end closes it
    if (n > 0)
      code.append(buf, static_cast<std::size_t>(n));
    else if (errno != EINTR)
      break;
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR)
    continue;
  fs::permissions(dir, fs::perms::owner_all);
  return code;
}

} // namespace

SCENARIO("a stream directory that cannot be read is an I/O error, not bad input", "[local]") {
  temp_dir dir;
  local::stream_dir::create(dir.path / "s", 2);
  CHECK(open_code_without_rights(dir.path / "s") == to_string(errc::io_failed));
  try {
    fs::create_directory(dir.path / "odd");
    fs::create_symlink("shardflow-stream", dir.path / "odd" / "shardflow-stream"); // a loop
    local::stream_dir::open(dir.path / "odd");
    FAIL("a stream whose meta file cannot be opened was opened");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
    CHECK_THAT(e.what(), Catch::Contains("cannot open the stream's meta file")
                           && Catch::Contains("odd/shardflow-stream"));
  }
  CHECK(local::stream_dir::open(dir.path / "s").shards() == 2); // readable again
}
