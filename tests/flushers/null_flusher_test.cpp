#include <shardflow/flushers/null_flusher.hpp>

#include <algorithm>

#include <catch2/catch.hpp>

using namespace shardflow;

SCENARIO("a null flusher holds up to its capacity and returns every token on flush",
         "[flushers][null_flusher]") {
  null_flusher f{3};
  stream_record x;
  CHECK(f.add(x, 10) == add_result::added);
  CHECK(f.add(x, 11) == add_result::added);
  CHECK(f.add(x, 12) == add_result::added);
  CHECK(f.add(x, 13) == add_result::full);
  CHECK(f.pending() == 3);
  CHECK(f.heartbeat().empty());
  auto tokens = f.flush(flush_mode::partial);
  std::sort(tokens.begin(), tokens.end());
  CHECK(tokens == std::vector<flush_token>{10, 11, 12});
  CHECK(f.pending() == 0);
  CHECK(f.add(x, 13) == add_result::added);
  CHECK(f.flush(flush_mode::full) == std::vector<flush_token>{13});
  CHECK(f.flush(flush_mode::full).empty());
}

SCENARIO("a null flusher factory makes a fresh flusher per shard", "[flushers][null_flusher]") {
  auto factory = null_flusher::factory(1);
  auto a = factory("shard-a");
  auto b = factory("shard-b");
  stream_record x;
  CHECK(a->add(x, 0) == add_result::added);
  CHECK(a->add(x, 1) == add_result::full);
  CHECK(b->add(x, 0) == add_result::added);
}
