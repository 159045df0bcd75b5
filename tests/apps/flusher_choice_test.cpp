#include "apps/shardflow/flusher_choice.hpp"

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.hpp"
#include <shardflow/core/error.hpp>

using namespace shardflow;
using namespace shardflow::cli;
using shardflow::testing::temp_dir;

SCENARIO("one flusher factory for every command: null, stdout, file:DIR",
         "[apps][flusher_choice]") {
  temp_dir dir;
  flusher_settings s;
  s.batch_records = 3;
  for (auto text : {"null", "stdout"}) {
    auto spec = parse_flusher(text);
    REQUIRE(spec);
    auto make = make_flusher_factory(*spec, s);
    REQUIRE(make);
    CHECK(make("shard-0") != nullptr);
  }
  auto spec = parse_flusher("file:" + (dir.path / "out" / "deeper").string());
  REQUIRE(spec);
  auto make = make_flusher_factory(*spec, s);
  CHECK(std::filesystem::is_directory(dir.path / "out" / "deeper")); // made before any shard runs
  CHECK(make("shard-0") != nullptr);
}

SCENARIO("an output directory that cannot be made fails once, as an I/O error naming it",
         "[apps][flusher_choice]") {
  temp_dir dir;
  std::filesystem::create_directories(dir.path);
  std::ofstream{dir.path / "a-file"} << "x";
  auto spec = parse_flusher("file:" + (dir.path / "a-file" / "out").string());
  REQUIRE(spec);
  try {
    make_flusher_factory(*spec, flusher_settings{});
    FAIL("no error");
  } catch (const error& e) {
    CHECK(e.code() == errc::io_failed);
    CHECK_THAT(e.what(), Catch::Contains("cannot write to the output directory")
                           && Catch::Contains("a-file"));
  }
}
