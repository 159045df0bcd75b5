// The checkpoint sink (actors/checkpoint_sink.hpp): serves a store to shards, answers the store's
// failures as errors with their code and text, and keeps running after them.
#include <shardflow/actors/checkpoint_sink.hpp>

#include <memory>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include <shardflow/actors/messages.hpp>
#include <shardflow/core/checkpoint_store.hpp>

using namespace shardflow;

namespace {

// A memory store whose next calls throw what the test says.
class failing_store final : public checkpoint_store {
public:
  enum class failure { none, shardflow_io, standard, other };
  failure next = failure::none;

  stored_checkpoint load(const shard_id& id) override {
    fail();
    return inner_.load(id);
  }

  void save(const shard_id& id, std::uint64_t gen, const checkpoint& cp) override {
    fail();
    inner_.save(id, gen, cp);
  }

  memory_checkpoint_store& inner() {
    return inner_;
  }

private:
  void fail() {
    const auto what = std::exchange(next, failure::none);
    if (what == failure::shardflow_io)
      throw error{errc::io_failed, "checkpoints.db: disk I/O error"};
    if (what == failure::standard)
      throw std::runtime_error("the store's connection is closed");
    if (what == failure::other)
      throw 42; // a store that throws something that is not an exception
  }

  memory_checkpoint_store inner_;
};

checkpoint at(std::uint64_t n) {
  sequence_number x;
  x.base = sequence_base{n};
  return checkpoint{x};
}

struct fixture : testing::deterministic_fixture {
  std::shared_ptr<failing_store> store = std::make_shared<failing_store>();
  caf::actor sink = spawn_checkpoint_sink(sys, store);

  ~fixture() {
    caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
    run();
  }

  answer<stored_checkpoint> load(const shard_id& id) {
    return ask<stored_checkpoint>(sink, load_atom::value, id);
  }

  answer<caf::ok_atom> save(const shard_id& id, std::uint64_t gen, checkpoint cp) {
    return ask<caf::ok_atom>(sink, save_atom::value, id, gen, cp);
  }
};

} // namespace

SCENARIO_METHOD(fixture, "a sink hands out a new generation on every load and keeps saves",
                "[actors][checkpoint_sink]") {
  auto first = load("s");
  REQUIRE(first.value);
  CHECK_FALSE(first.value->position);
  REQUIRE(save("s", first.value->generation, at(41)).value);
  auto second = load("s");
  REQUIRE(second.value);
  CHECK(second.value->generation == first.value->generation + 1);
  REQUIRE(second.value->position);
  CHECK(second.value->position->base == sequence_base{41});
  REQUIRE(save("s", second.value->generation, checkpoint{}).value);
  CHECK(store->inner().peek("s")->ended);
}

SCENARIO_METHOD(fixture, "a sink refuses a fenced incarnation's save as stale",
                "[actors][checkpoint_sink]") {
  auto old = load("s");
  auto current = load("s");
  REQUIRE(old.value);
  REQUIRE(current.value);
  auto r = save("s", old.value->generation, at(5));
  CHECK_FALSE(r.value);
  CHECK(code_of(r.err) == errc::stale_generation);
  CHECK_FALSE(store->inner().peek("s")->position);
  CHECK(save("s", current.value->generation, at(5)).value);
}

SCENARIO_METHOD(fixture, "a store's shardflow error reaches the shard with its code and text",
                "[actors][checkpoint_sink]") {
  auto gen = load("s").value->generation;
  store->next = failing_store::failure::shardflow_io;
  auto r = save("s", gen, at(1));
  CHECK(code_of(r.err) == errc::io_failed);
  CHECK(text_of(r.err) == "checkpoints.db: disk I/O error");
  store->next = failing_store::failure::shardflow_io;
  auto l = load("s");
  CHECK_FALSE(l.value);
  CHECK(code_of(l.err) == errc::io_failed);
}

SCENARIO_METHOD(fixture, "any other exception from the store is a failed checkpoint",
                "[actors][checkpoint_sink]") {
  auto gen = load("s").value->generation;
  store->next = failing_store::failure::standard;
  auto r = save("s", gen, at(1));
  CHECK(code_of(r.err) == errc::checkpoint_failed);
  CHECK(text_of(r.err) == "the store's connection is closed");
}

SCENARIO_METHOD(fixture, "a sink keeps serving after a failure", "[actors][checkpoint_sink]") {
  auto gen = load("s").value->generation;
  store->next = failing_store::failure::standard;
  CHECK_FALSE(save("s", gen, at(1)).value);
  CHECK_FALSE(is_dead(sink));
  CHECK(save("s", gen, at(1)).value);
  CHECK(store->inner().peek("s")->position->base == sequence_base{1});
}

SCENARIO_METHOD(fixture, "a store that throws a non-standard exception does not kill the sink",
                "[actors][checkpoint_sink]") {
  auto gen = load("s").value->generation;
  store->next = failing_store::failure::other;
  auto r = save("s", gen, at(1));
  CHECK(code_of(r.err) == errc::checkpoint_failed);
  CHECK_FALSE(is_dead(sink));
  CHECK(save("s", gen, at(1)).value);
}
