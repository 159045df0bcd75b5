#include <shardflow/stores/sqlite_checkpoint_store.hpp>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tests/support/thrown_code.hpp"

#include "tests/support/temp_dir.hpp"

#include <shardflow/core/error.hpp>

#include <sqlite3.h>

using namespace shardflow;
using shardflow::testing::thrown_code;
namespace fs = std::filesystem;

namespace {

struct temp_db {
  shardflow::testing::temp_dir dir;
  fs::path path;
  temp_db() : path((fs::create_directories(dir.path), dir.path / "checkpoints.db")) {
  }
};

checkpoint at(const std::string& digits, std::uint32_t user_sub = 0, std::uint32_t user_total = 0) {
  sequence_number s;
  s.base = sequence_base::parse(digits);
  s.sub = 7;
  s.user_sub = user_sub;
  s.user_total = user_total;
  return checkpoint{s};
}

} // namespace

SCENARIO("checkpoints survive reopening, with every part of the sequence number",
         "[stores][sqlite]") {
  temp_db db;
  const std::string big = "49590338271490256608559692538361571095921575989136588898";
  {
    sqlite_checkpoint_store store{db.path, "orders"};
    auto first = store.load("shard-1");
    CHECK(first.generation == 1);
    CHECK_FALSE(first.position);
    store.save("shard-1", first.generation, at(big, 2, 5));
  }
  sqlite_checkpoint_store store{db.path, "orders"};
  auto again = store.load("shard-1");
  CHECK(again.generation == 2);
  REQUIRE(again.position);
  CHECK(again.position->base.to_string() == big);
  CHECK(again.position->sub == 7u);
  CHECK(again.position->user_sub == 2);
  CHECK(again.position->user_total == 5);
  AND_THEN("another stream in the same file is separate") {
    sqlite_checkpoint_store other{db.path, "payments"};
    CHECK_FALSE(other.load("shard-1").position);
  }
}

SCENARIO("the SQLite store fences old incarnations and refuses moving back", "[stores][sqlite]") {
  temp_db db;
  sqlite_checkpoint_store store{db.path, "s"};
  auto a = store.load("x");
  store.save("x", a.generation, at("100"));
  auto b = store.load("x");
  CHECK(thrown_code([&] { store.save("x", a.generation, at("200")); }) == errc::stale_generation);
  CHECK(thrown_code([&] { store.save("x", b.generation, at("50")); }) == errc::checkpoint_failed);
  store.save("x", b.generation, checkpoint{}); // the end marker keeps the position
  auto rows = store.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].second.position->base.to_string() == "100");
  CHECK(rows[0].second.ended);
}

SCENARIO("a file that is not a database is a clear error", "[stores][sqlite]") {
  temp_db db;
  std::ofstream{db.path} << "this is not a database, it is just some text that goes on and on";
  CHECK_THROWS_WITH(sqlite_checkpoint_store(db.path, "s"),
                    Catch::Contains("file is not a database"));
}

SCENARIO("a database another process holds locked is reported as locked", "[stores][sqlite]") {
  temp_db db;
  sqlite3* holder = nullptr;
  REQUIRE(sqlite3_open(db.path.c_str(), &holder) == SQLITE_OK);
  REQUIRE(sqlite3_exec(holder, "CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);",
                       nullptr, nullptr, nullptr)
          == SQLITE_OK);
  try {
    sqlite_checkpoint_store store{db.path, "s", std::chrono::milliseconds{50}};
    FAIL("opened a locked database");
  } catch (const error& e) {
    CHECK(e.code() == errc::checkpoint_failed);
    CHECK_THAT(e.what(), Catch::Contains("locked") && Catch::Contains("waited 50 ms"));
    CHECK_THAT(e.what(), !Catch::Contains("is it a shardflow checkpoint database"));
  }
  sqlite3_close(holder);
}

SCENARIO("the store creates the directories its database goes in", "[stores][sqlite]") {
  temp_db db;
  const auto nested = db.dir.path / "a" / "b" / "checkpoints.db";
  {
    sqlite_checkpoint_store store{nested, "s"};
    store.save("x", store.load("x").generation, at("100"));
  }
  CHECK(fs::is_directory(db.dir.path / "a" / "b"));
  sqlite_checkpoint_store again{nested, "s"};
  CHECK(again.rows().size() == 1);
  AND_THEN("a directory that cannot be made is named in the error") {
    std::ofstream{db.dir.path / "file"} << "a regular file";
    try {
      sqlite_checkpoint_store bad{db.dir.path / "file" / "x.db", "s"};
      FAIL("opened a database under a regular file");
    } catch (const error& e) {
      CHECK(e.code() == errc::checkpoint_failed);
      CHECK_THAT(e.what(), Catch::Contains("cannot create the directory")
                             && Catch::Contains((db.dir.path / "file").string()));
    }
  }
}
