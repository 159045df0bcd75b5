#include "flushers/file_flusher.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.hpp"

#include "flushers/error.hpp"

using namespace shardflow;
using shardflow::testing::temp_dir;
namespace fs = std::filesystem;

namespace {


std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

stream_record rec(int i) {
  stream_record x;
  x.partition_key = "k" + std::to_string(i);
  x.data = "data " + std::to_string(i);
  return x;
}

} // namespace

SCENARIO("the file flusher writes a batch before it returns its tokens", "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path / "out";
  cfg.batch_records = 2;
  file_flusher f{"shard-1", cfg};
  CHECK(f.add(rec(1), 10) == add_result::added);
  CHECK(f.add(rec(2), 11) == add_result::added);
  CHECK(f.add(rec(3), 12) == add_result::full);
  CHECK(slurp(f.current_file()).empty()); // nothing on disk before the flush
  CHECK(f.flush(flush_mode::partial) == std::vector<flush_token>{10, 11});
  CHECK(slurp(f.current_file())
        == "{\"k\":\"k1\",\"d\":\"data 1\"}\n{\"k\":\"k2\",\"d\":\"data 2\"}\n");
  CHECK(f.flush(flush_mode::full).empty());
  CHECK(f.current_file().filename() == "shard-1-000001.ndjson");
}

SCENARIO("a new incarnation continues the newest file, and files roll by size",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  cfg.roll_bytes = 40;
  {
    file_flusher f{"s", cfg};
    f.add(rec(1), 0);
    f.add(rec(2), 1);
    f.flush(flush_mode::full); // 50 bytes: rolls to file 2
    CHECK(f.current_file().filename() == "s-000002.ndjson");
    f.add(rec(3), 2);
    f.flush(flush_mode::full);
  }
  file_flusher g{"s", cfg};
  CHECK(g.current_file().filename() == "s-000002.ndjson");
  g.add(rec(4), 0);
  g.flush(flush_mode::full);
  CHECK(slurp(dir.path / "s-000002.ndjson")
        == "{\"k\":\"k3\",\"d\":\"data 3\"}\n{\"k\":\"k4\",\"d\":\"data 4\"}\n");
}

SCENARIO("an unusable output directory is a clear error", "[flushers][file_flusher]") {
  temp_dir dir;
  fs::create_directories(dir.path);
  std::ofstream{dir.path / "file"} << "x";
  file_flusher_config cfg;
  cfg.dir = dir.path / "file" / "sub";
  CHECK_THROWS_WITH(file_flusher("s", cfg), Catch::Contains("cannot create the output directory"));
}

SCENARIO("a partial last line left by a crash is cut off", "[flushers][file_flusher]") {
  temp_dir dir;
  fs::create_directories(dir.path);
  std::ofstream{dir.path / "s-000001.ndjson"} << "{\"k\":\"a\",\"d\":\"whole\"}\n{\"k\":\"b\",\"d\":\"to";
  file_flusher_config cfg;
  cfg.dir = dir.path;
  file_flusher f{"s", cfg};
  f.add(rec(7), 0);
  f.flush(flush_mode::full);
  CHECK(slurp(dir.path / "s-000001.ndjson")
        == "{\"k\":\"a\",\"d\":\"whole\"}\n{\"k\":\"k7\",\"d\":\"data 7\"}\n");
}
