// Tests of flushers/metered_flusher.hpp: what it counts, and that it changes nothing it passes on.
#include <catch2/catch.hpp>

#include <memory>

#include <shardflow/flushers/metered_flusher.hpp>
#include <shardflow/flushers/null_flusher.hpp>

using namespace shardflow;

SCENARIO("a metered flusher counts added records, their bytes, flushes and durable tokens",
         "[flushers][metered]") {
  auto meter = std::make_shared<flusher_meter>();
  auto make = metered_flusher::wrap(
    [](const shard_id&) { return std::make_unique<null_flusher>(2); }, meter);
  auto f = make("s");
  stream_record x;
  x.data = "hello";
  CHECK(f->add(x, 1) == add_result::added);
  CHECK(f->add(x, 2) == add_result::added);
  CHECK(f->add(x, 3) == add_result::full); // the null flusher holds two: not counted
  CHECK(meter->records.load() == 2);
  CHECK(meter->bytes.load() == 10);
  auto tokens = f->flush(flush_mode::full);
  CHECK(tokens.size() == 2);
  CHECK(meter->flushes.load() == 1);
  CHECK(meter->durable.load() == 2);
  CHECK(f->heartbeat().empty());
  CHECK(meter->durable.load() == 2);
}

SCENARIO("flushers of one metered factory share one meter", "[flushers][metered]") {
  auto meter = std::make_shared<flusher_meter>();
  auto make = metered_flusher::wrap(
    [](const shard_id&) { return std::make_unique<null_flusher>(10); }, meter);
  auto a = make("a");
  auto b = make("b");
  stream_record x;
  x.data = "xy";
  a->add(x, 1);
  b->add(x, 1);
  CHECK(meter->records.load() == 2);
  CHECK(meter->bytes.load() == 4);
}
