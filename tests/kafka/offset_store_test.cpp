// tests/kafka/offset_store_test.cpp - the group's committed offsets as a checkpoint store: a
// checkpoint at o commits o + 1, and a shard of an old generation or assignment never commits
// (a consumer in assign mode against librdkafka's mock cluster: no group join to wait for).
#include <shardflow/kafka/offset_store.hpp>

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <shardflow/core/error.hpp>

#include "tests/kafka/mock_cluster.hpp"

using namespace shardflow;
using shardflow::testing::mock_kafka;

namespace {

checkpoint at(std::uint64_t offset) {
  sequence_number s;
  s.base = sequence_base{offset};
  return checkpoint{s};
}

errc code_of_save(kafka_offset_store& store, std::uint64_t gen, std::uint64_t offset,
                  const shard_id& id = "t-0") {
  try {
    store.save(id, gen, at(offset));
  } catch (const error& e) {
    return e.code();
  }
  return errc::none;
}

std::unique_ptr<RdKafka::KafkaConsumer> consumer(const mock_kafka& mock) {
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  std::string why;
  conf->set("bootstrap.servers", mock.bootstraps(), why);
  conf->set("group.id", "g-store", why);
  conf->set("enable.auto.commit", "false", why);
  return std::unique_ptr<RdKafka::KafkaConsumer>{RdKafka::KafkaConsumer::create(conf.get(), why)};
}

} // namespace

TEST_CASE("a checkpoint at offset o commits o + 1, and load gives it back as o") {
  mock_kafka mock;
  mock.create_topic("t", 1);
  auto c = consumer(mock);
  kafka_offset_store store{c.get()};
  store.enlist("t-0", "t", 0, std::nullopt);
  auto a = store.load("t-0");
  CHECK(!a.position);
  store.save("t-0", a.generation, at(9));
  CHECK(store.committed("t-0") == 10);
  CHECK(mock.committed("g-store", "t", 1).at(0) == 10);
  store.save("t-0", a.generation, checkpoint{}); // an end marker commits nothing
  CHECK(store.commits() == 1);
  auto b = store.load("t-0");
  REQUIRE(b.position);
  CHECK(b.position->base.to_uint64() == 9u);
  c->close();
}

TEST_CASE("an older incarnation, a revoked partition and an earlier assignment never commit") {
  mock_kafka mock;
  mock.create_topic("t", 1);
  auto c = consumer(mock);
  kafka_offset_store store{c.get()};
  store.enlist("t-0", "t", 0, 5);
  auto a = store.load("t-0");
  CHECK(a.position->base.to_uint64() == 4u);
  auto b = store.load("t-0");
  CHECK(b.generation > a.generation);
  CHECK(code_of_save(store, a.generation, 20) == errc::stale_generation);
  CHECK(code_of_save(store, b.generation, 19) == errc::none);
  store.delist("t-0");
  CHECK(code_of_save(store, b.generation, 30) == errc::stale_generation);
  store.enlist("t-0", "t", 0, 20); // assigned again: b belongs to the earlier assignment
  CHECK(code_of_save(store, b.generation, 30) == errc::stale_generation);
  store.detach();
  CHECK(code_of_save(store, b.generation + 10, 30) == errc::stale_generation);
  CHECK(mock.committed("g-store", "t", 1).at(0) == 20);
  c->close();
}

TEST_CASE("partitions delisted together are all stale at once") {
  mock_kafka mock;
  mock.create_topic("t", 3);
  auto c = consumer(mock);
  kafka_offset_store store{c.get()};
  for (int p = 0; p < 3; ++p)
    store.enlist("t-" + std::to_string(p), "t", p, std::nullopt);
  auto a = store.load("t-0");
  auto b = store.load("t-1");
  auto k = store.load("t-2");
  store.delist(std::vector<shard_id>{"t-0", "t-1"});
  CHECK(code_of_save(store, a.generation, 5, "t-0") == errc::stale_generation);
  CHECK(code_of_save(store, b.generation, 5, "t-1") == errc::stale_generation);
  CHECK(code_of_save(store, k.generation, 5, "t-2") == errc::none); // not delisted
  c->close();
}
