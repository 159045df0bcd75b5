#include <shardflow/flushers/dead_letter_file.hpp>

#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/support/file_size_limit.hpp"
#include "tests/support/temp_dir.hpp"

#include <shardflow/core/error.hpp>

using namespace shardflow;
using shardflow::testing::slurp;
using shardflow::testing::temp_dir;
namespace fs = std::filesystem;

SCENARIO("dead letters go to the shard's file in a directory made for them",
         "[flushers][dead_letter]") {
  temp_dir dir;
  dead_letter_file f{dir.path / "dead", "../shard/1"};
  CHECK(f.path().empty()); // nothing opened before the first write
  f.write("one ");
  f.write("line\n");
  f.sync();
  CHECK(f.path() == dir.path / "dead" / "%2E.%2Fshard%2F1.ndjson");
  CHECK(slurp(f.path()) == "one line\n");
}

SCENARIO("a dead writer's partial line is cut before the next dead letters",
         "[flushers][dead_letter]") {
  temp_dir dir;
  fs::create_directories(dir.path);
  std::ofstream{dir.path / "s.ndjson"} << "whole\n{\"half";
  dead_letter_file f{dir.path, "s"};
  f.write("next\n");
  f.sync();
  CHECK(slurp(dir.path / "s.ndjson") == "whole\nnext\n");
}

SCENARIO("two live writers of one shard's dead letters never share a file",
         "[flushers][dead_letter]") {
  temp_dir dir;
  dead_letter_file a{dir.path, "s"};
  a.write("a1\n");
  dead_letter_file b{dir.path, "s"};
  b.write("b1\n");
  a.write("a2\n");
  CHECK(a.path().filename() == "s.ndjson");
  CHECK(b.path().filename() == "s.2.ndjson");
  CHECK(slurp(a.path()) == "a1\na2\n");
  CHECK(slurp(b.path()) == "b1\n");
}

SCENARIO("a dead letter whose write fails leaves the file ending in a whole line",
         "[flushers][dead_letter]") {
  temp_dir dir;
  dead_letter_file f{dir.path, "s"};
  f.write("first\n");
  f.sync();
  {
    testing::file_size_limit limit{100}; // the disk fills up during the write
    try {
      f.write(std::string(50, 'a') + "\n" + std::string(400, 'b') + "\n");
      FAIL("the write did not fail");
    } catch (const error& e) {
      CHECK(e.code() == errc::io_failed);
      CHECK_THAT(e.what(), Catch::Contains("cannot write the dead-letter file"));
    }
  }
  CHECK(slurp(f.path()) == "first\n" + std::string(50, 'a') + "\n");
}
