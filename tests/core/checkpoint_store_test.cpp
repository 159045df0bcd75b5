// Tests of core/checkpoint_store.hpp: the fencing and ordering rules every store applies
// (apply_checkpoint), through the in-memory store.
#include <catch2/catch.hpp>

#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/error.hpp>

#include "tests/support/thrown_code.hpp"

using namespace shardflow;
using shardflow::testing::thrown_code;

namespace {

checkpoint at(std::uint64_t base) {
  sequence_number x;
  x.base = sequence_base{base};
  return checkpoint{x};
}

} // namespace

SCENARIO("every load is a new incarnation and fences the older ones", "[core][checkpoint_store]") {
  memory_checkpoint_store store;
  CHECK_FALSE(store.peek("s"));
  auto first = store.load("s");
  CHECK(first.generation == 1);
  CHECK_FALSE(first.position);
  store.save("s", 1, at(10));
  auto second = store.load("s");
  CHECK(second.generation == 2);
  REQUIRE(second.position);
  CHECK(second.position->base == sequence_base{10});
  // The first incarnation is fenced: its late save is refused and changes nothing.
  CHECK(thrown_code([&] { store.save("s", 1, at(20)); }) == errc::stale_generation);
  CHECK(store.peek("s")->position->base == sequence_base{10});
  store.save("s", 2, at(20));
  CHECK(store.peek("s")->position->base == sequence_base{20});
}

SCENARIO("a checkpoint never moves back", "[core][checkpoint_store]") {
  memory_checkpoint_store store;
  store.load("s");
  store.save("s", 1, at(20));
  CHECK(thrown_code([&] { store.save("s", 1, at(19)); }) == errc::checkpoint_failed);
  CHECK(store.peek("s")->position->base == sequence_base{20});
  store.save("s", 1, at(20)); // the same position again is fine
  CHECK(store.peek("s")->position->base == sequence_base{20});
}

SCENARIO("the end marker keeps the position, and a later position clears it",
         "[core][checkpoint_store]") {
  memory_checkpoint_store store;
  store.load("s");
  store.save("s", 1, at(5));
  store.save("s", 1, checkpoint{});
  auto row = *store.peek("s");
  CHECK(row.ended);
  REQUIRE(row.position);
  CHECK(row.position->base == sequence_base{5});
  store.save("s", 1, at(6));
  CHECK_FALSE(store.peek("s")->ended);
}

SCENARIO("shards are independent", "[core][checkpoint_store]") {
  memory_checkpoint_store store;
  CHECK(store.load("a").generation == 1);
  CHECK(store.load("a").generation == 2);
  CHECK(store.load("b").generation == 1);
  store.save("b", 1, at(3));
  CHECK_FALSE(store.peek("a")->position);
}
