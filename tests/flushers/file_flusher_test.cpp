#include <shardflow/flushers/file_flusher.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/support/file_size_limit.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thrown_code.hpp"

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/conformance.hpp>
#include <shardflow/flushers/io_pool.hpp>
#include <shardflow/flushers/record_line.hpp>

using namespace shardflow;
using shardflow::testing::slurp;
using shardflow::testing::temp_dir;
using shardflow::testing::thrown_code;
namespace fs = std::filesystem;

namespace {

stream_record rec(int i) {
  stream_record x;
  x.partition_key = "k" + std::to_string(i);
  x.data = "data " + std::to_string(i);
  return x;
}

} // namespace

SCENARIO("the file flusher writes a batch before it returns its tokens",
         "[flushers][file_flusher]") {
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
  std::ofstream{dir.path / "s-000001.ndjson"}
    << "{\"k\":\"a\",\"d\":\"whole\"}\n{\"k\":\"b\",\"d\":\"to";
  file_flusher_config cfg;
  cfg.dir = dir.path;
  file_flusher f{"s", cfg};
  f.add(rec(7), 0);
  f.flush(flush_mode::full);
  CHECK(slurp(dir.path / "s-000001.ndjson")
        == "{\"k\":\"a\",\"d\":\"whole\"}\n{\"k\":\"k7\",\"d\":\"data 7\"}\n");
}

namespace {

// Reverses file_name_of (a reference decoder: names decode to their ids, so the mapping is injective).
std::string id_of_name(const std::string& name) {
  if (name == "%")
    return {};
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      out.push_back(name[i]);
      continue;
    }
    REQUIRE(i + 2 < name.size() + 0);
    out.push_back(static_cast<char>(std::stoi(name.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

// Every line of `p`, each checked to be a whole record line.
std::vector<std::string> whole_lines_of(const fs::path& p) {
  const auto text = slurp(p);
  std::vector<std::string> data;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    REQUIRE(nl != std::string::npos);
    stream_record x;
    REQUIRE(parse_line(std::string_view{text}.substr(start, nl - start), x));
    data.push_back(x.data);
    start = nl + 1;
  }
  return data;
}

} // namespace

SCENARIO("shard ids name files inside the output directory only, reversibly",
         "[flushers][file_flusher]") {
  CHECK(file_name_of("shardId-000000000001") == "shardId-000000000001");
  CHECK(file_name_of("shard-00000") == "shard-00000");
  CHECK(file_name_of("a.b_c") == "a.b_c");
  CHECK(file_name_of("../x") == "%2E.%2Fx");
  CHECK(file_name_of("/abs/path") == "%2Fabs%2Fpath");
  CHECK(file_name_of("a/b") == "a%2Fb");
  CHECK(file_name_of("..") == "%2E.");
  CHECK(file_name_of(".") == "%2E");
  CHECK(file_name_of("%") == "%25");
  CHECK(file_name_of("") == "%");
  CHECK(file_name_of("\xc3\xa9t\xc3\xa9") == "%C3%A9t%C3%A9");
  GIVEN("random ids over a small alphabet with every special case") {
    const std::string alphabet = "a.-_/%\\ \x01\xff";
    std::mt19937 rng{11};
    std::set<std::string> names;
    std::set<std::string> ids;
    for (int i = 0; i < 3000; ++i) {
      std::string id;
      for (auto n = rng() % 5; n-- > 0;)
        id.push_back(alphabet[rng() % alphabet.size()]);
      const auto name = file_name_of(id);
      REQUIRE(id_of_name(name) == id);
      REQUIRE(name.find('/') == std::string::npos);
      REQUIRE(name != ".");
      REQUIRE(name != "..");
      REQUIRE_FALSE(name.empty());
      ids.insert(id);
      names.insert(name);
    }
    CHECK(names.size() == ids.size());
  }
}

SCENARIO("a flusher of a shard id with slashes writes inside its directory",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path / "out";
  for (const std::string id : {"../x", "/abs/path", "a/b", "..", "."}) {
    file_flusher f{id, cfg};
    f.add(rec(1), 0);
    f.flush(flush_mode::full);
    CHECK(f.current_file().parent_path() == cfg.dir);
  }
  CHECK_FALSE(fs::exists(dir.path / "x-000001.ndjson"));
  std::size_t files = 0;
  for (auto& e : fs::directory_iterator(cfg.dir)) {
    CHECK(e.is_regular_file());
    ++files;
  }
  CHECK(files == 5);
}

namespace {

// A part of a line at the end of `file`: a write in progress, or one a crash cut short.
void tear(const fs::path& file) {
  std::ofstream out{file, std::ios::app};
  out << "{\"k\":\"k2\",\"d\":\"da";
}

void write_one(file_flusher& f, int i) {
  f.add(rec(i), 0);
  f.flush(flush_mode::full);
}

std::vector<std::string> data_range(int from, int to) {
  std::vector<std::string> result;
  for (int i = from; i < to; ++i)
    result.push_back("data " + std::to_string(i));
  return result;
}

} // namespace

SCENARIO("two live flushers of one shard never cut or mix each other's records",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  file_flusher a{"s", cfg};
  write_one(a, 0);
  WHEN("a second incarnation starts while the first is in the middle of a write") {
    tear(a.current_file());
    const auto before = slurp(a.current_file());
    file_flusher b{"s", cfg};
    THEN("it leaves the first one's file alone and starts the next") {
      CHECK(slurp(a.current_file()) == before);
      CHECK(b.current_file().filename() == "s-000002.ndjson");
    }
  }
  WHEN("both write interleaved batches, and a third one rolls past their files") {
    file_flusher b{"s", cfg};
    cfg.roll_bytes = 1; // c rolls after each flush
    file_flusher c{"s", cfg};
    for (int i = 1; i < 10; ++i) {
      write_one(a, 100 + i);
      write_one(b, 200 + i);
      write_one(c, 300 + i);
    }
    THEN("every record of each is whole, in its own file, in order") {
      auto of_a = data_range(101, 110);
      of_a.insert(of_a.begin(), "data 0");
      CHECK(whole_lines_of(dir.path / "s-000001.ndjson") == of_a);
      CHECK(whole_lines_of(dir.path / "s-000002.ndjson") == data_range(201, 210));
      for (int i = 1; i < 10; ++i) // c wrote 3, rolled to 4, ... one record per file
        CHECK(whole_lines_of(dir.path / fmt::format("s-{:06}.ndjson", i + 2))
              == data_range(300 + i, 301 + i));
      CHECK(c.current_file().filename() == "s-000012.ndjson");
    }
  }
}

SCENARIO("the torn line of a writer that is gone is cut off by the next one",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  {
    file_flusher a{"s", cfg};
    write_one(a, 1);
    tear(a.current_file()); // its last write was cut short, then it died
  }
  file_flusher b{"s", cfg};
  CHECK(b.current_file().filename() == "s-000001.ndjson");
  write_one(b, 3);
  CHECK(whole_lines_of(dir.path / "s-000001.ndjson")
        == std::vector<std::string>{"data 1", "data 3"});
}

SCENARIO("a flush whose write fails leaves the file ending in a whole line",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  file_flusher f{"s", cfg};
  f.add(rec(1), 0);
  f.flush(flush_mode::full);
  const auto before = slurp(f.current_file());
  stream_record big = rec(2);
  big.data.assign(400, 'x');
  f.add(big, 1);
  {
    testing::file_size_limit limit{before.size() + 100}; // the disk fills up during the write
    CHECK_THROWS_WITH(f.flush(flush_mode::full), Catch::Contains("cannot write"));
  }
  CHECK(slurp(f.current_file()) == before);
}

SCENARIO("two writers that died together both have their torn lines cut",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  {
    file_flusher a{"s", cfg};
    file_flusher b{"s", cfg}; // a lease handover: b writes the next file
    for (auto* f : {&a, &b}) {
      write_one(*f, 1);
      tear(f->current_file()); // both were in the middle of a write when the process died
    }
  }
  file_flusher c{"s", cfg};
  CHECK(c.current_file().filename() == "s-000002.ndjson");
  CHECK(whole_lines_of(dir.path / "s-000001.ndjson") == std::vector<std::string>{"data 1"});
  CHECK(whole_lines_of(dir.path / "s-000002.ndjson") == std::vector<std::string>{"data 1"});
}

SCENARIO("flushers starting while a writer writes large batches and rolls never cut its records",
         "[flushers][file_flusher]") {
  // Every start repairs the shard's files that no live writer holds; a repair that looked at a file
  // without its lock would see the writer's large writes half done and cut them. Probabilistic
  // (many starts against many writes and rolls): it catches a repair that ignores the lock at once,
  // and can catch one that reads the size before taking the lock.
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  cfg.batch_records = 100;
  cfg.sync = false; // the race is about sizes, not the disk
  auto rolling = cfg;
  rolling.roll_bytes = 150'000; // a roll every other batch of ~100 KB
  constexpr int batches = 300;
  std::atomic<bool> done{false};
  std::thread starter{[&] {
    for (int i = 0; i < 2000 && !done.load(); ++i)
      file_flusher other{"s", cfg};
  }};
  {
    file_flusher a{"s", rolling};
    for (int b = 0; b < batches; ++b) {
      for (int i = 0; i < 100; ++i) {
        auto x = rec(b * 100 + i);
        x.data += std::string(1000, 'x');
        a.add(x, 0);
      }
      a.flush(flush_mode::full);
    }
  }
  done = true;
  starter.join();
  std::set<std::string> seen;
  for (auto& entry : fs::directory_iterator(dir.path))
    for (auto& line : whole_lines_of(entry.path()))
      seen.insert(line);
  std::size_t missing = 0;
  for (int i = 0; i < batches * 100; ++i)
    missing += seen.count("data " + std::to_string(i) + std::string(1000, 'x')) == 0;
  CHECK(missing == 0);
}

SCENARIO("with an I/O pool the file flusher writes on the pool's threads, tokens come back later",
         "[flushers][file_flusher][io_pool]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path / "out";
  cfg.batch_records = 2;
  cfg.pool = std::make_shared<io_pool>(io_pool_config{2});
  auto make = file_flusher::factory(cfg);
  auto f = make("shard-1");
  REQUIRE(dynamic_cast<pooled_flusher*>(f.get()) != nullptr);
  std::vector<stream_record> records;
  for (int i = 1; i <= 5; ++i)
    records.push_back(rec(i));
  std::vector<flush_token> got;
  for (int i = 0; i < 5; ++i) {
    auto r = f->add(records[static_cast<std::size_t>(i)], static_cast<flush_token>(i));
    if (r == add_result::full) {
      auto t = f->flush(flush_mode::partial);
      got.insert(got.end(), t.begin(), t.end());
      r = f->add(records[static_cast<std::size_t>(i)], static_cast<flush_token>(i));
    }
    REQUIRE(r == add_result::added);
  }
  auto rest = f->flush(flush_mode::full);
  got.insert(got.end(), rest.begin(), rest.end());
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<flush_token>{0, 1, 2, 3, 4});
  std::string want;
  for (auto& x : records)
    append_line(want, x);
  CHECK(slurp(cfg.dir / "shard-1-000001.ndjson") == want);
  REQUIRE_NOTHROW(require_flusher_contract(make));
}

SCENARIO("with an I/O pool a failed write fails the shard and the file ends in a whole line",
         "[flushers][file_flusher][io_pool]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path / "out";
  cfg.batch_records = 1000;
  cfg.pool = std::make_shared<io_pool>(io_pool_config{1});
  auto f = file_flusher::factory(cfg)("s");
  std::vector<stream_record> records;
  for (int i = 0; i < 100; ++i)
    records.push_back(rec(i));
  for (std::size_t i = 0; i < records.size(); ++i)
    REQUIRE(f->add(records[i], i) == add_result::added);
  {
    testing::file_size_limit limit{100}; // the disk fills up during the write
    CHECK(thrown_code([&] { f->flush(flush_mode::full); }) == errc::io_failed);
  }
  CHECK_THROWS_WITH(f->heartbeat(), Catch::Contains("cannot write"));
  CHECK(slurp(cfg.dir / "s-000001.ndjson").empty());
}

SCENARIO("a file listing reads the directory once and gives each shard its files once",
         "[flushers][file_flusher]") {
  temp_dir dir;
  fs::create_directories(dir.path);
  for (auto name : {"a-000001.ndjson", "a-000002.ndjson", "b-000001.ndjson", "a-b-000003.ndjson",
                    "a-x.ndjson", "junk.txt"})
    std::ofstream{dir.path / name} << "";
  file_listing listing{dir.path};
  auto a = listing.take("a");
  REQUIRE(a);
  std::sort(a->begin(), a->end());
  CHECK(*a == std::vector<unsigned>{1, 2});
  CHECK(listing.take("a-b") == std::vector<unsigned>{3});
  CHECK(listing.take("c") == std::vector<unsigned>{});
  CHECK_FALSE(listing.take("a")); // taken: a restarted incarnation lists the directory itself
  CHECK(listing.listings() == 1);
  file_listing stale{dir.path, std::chrono::seconds(-1)};
  CHECK_FALSE(stale.take("b")); // too old
}

SCENARIO("a flusher opened from a listing finds the files made since and cuts their torn lines",
         "[flushers][file_flusher]") {
  temp_dir dir;
  file_flusher_config cfg;
  cfg.dir = dir.path;
  fs::create_directories(dir.path);
  std::ofstream{dir.path / "x-000001.ndjson"} << "{\"k\":\"a\",\"d\":\"1\"}\n";
  file_listing listing{dir.path};
  CHECK(listing.take("other") == std::vector<unsigned>{}); // the listing is made now
  std::ofstream{dir.path / "x-000002.ndjson"} << "{\"k\":\"a\",\"d\":\"2\"}\n{\"k\":\"a\",\"d";
  file_flusher f{"x", cfg, &listing};
  CHECK(f.current_file().filename() == "x-000002.ndjson");
  CHECK(slurp(dir.path / "x-000002.ndjson") == "{\"k\":\"a\",\"d\":\"2\"}\n");
  CHECK(listing.listings() == 1);
}
