// tests/kafka/mock_cluster.hpp - librdkafka's mock cluster in the test process, a keyed producer,
// watermarks and committed offsets: what the Kafka tests share.
//
// The cluster belongs to a producer made with `test.mock.num.brokers` (librdkafka's way 2): its
// bootstraps address every other client of the process. Destroy order: clients first, then the
// cluster (its producer). Group tests use `group_properties()`: the mock needs short sessions
// (4-6 s) and a 500 ms heartbeat, or a rebalance takes the default 45 s.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include <shardflow/kafka/properties.hpp>

namespace shardflow::testing {

/// A mock cluster of `brokers` brokers and a producer into it.
class mock_kafka {
public:
  explicit mock_kafka(int brokers = 3) {
    std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
    std::string why;
    conf->set("test.mock.num.brokers", std::to_string(brokers), why);
    conf->set("linger.ms", "5", why);
    conf->set("log_level", "3", why);
    producer_.reset(RdKafka::Producer::create(conf.get(), why));
    if (!producer_)
      throw std::runtime_error("mock producer: " + why);
    cluster_ = rd_kafka_handle_mock_cluster(producer_->c_ptr());
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }

  /// Returns bootstrap.servers for other clients.
  const std::string& bootstraps() const noexcept {
    return bootstraps_;
  }

  /// Creates `topic` with `partitions` partitions.
  void create_topic(const std::string& topic, int partitions) {
    if (rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1)
        != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot create mock topic " + topic);
  }

  /// Produces `count` records keyed "k<i>" with data "<prefix><i>", i from `first`, into
  /// `partition` (default: the partitioner's choice by key); waits until all are delivered.
  void produce(const std::string& topic, int first, int count, const std::string& prefix = "rec-",
               std::int32_t partition = RdKafka::Topic::PARTITION_UA) {
    for (int i = first; i < first + count; ++i) {
      auto key = "k" + std::to_string(i);
      auto value = prefix + std::to_string(i);
      for (int attempt = 0;; ++attempt) {
        auto err = producer_->produce(topic, partition,
                                      RdKafka::Producer::RK_MSG_COPY, value.data(), value.size(),
                                      key.data(), key.size(), 0, nullptr);
        if (err == RdKafka::ERR_NO_ERROR)
          break;
        if (err != RdKafka::ERR__QUEUE_FULL || attempt > 1000)
          throw std::runtime_error("produce failed: " + RdKafka::err2str(err));
        producer_->poll(10);
      }
    }
    if (producer_->flush(30'000) != RdKafka::ERR_NO_ERROR)
      throw std::runtime_error("mock producer: flush timed out");
  }

  /// Returns the high watermark of each partition of `topic` (0 .. partitions-1).
  std::vector<std::int64_t> high_watermarks(const std::string& topic, int partitions) {
    std::vector<std::int64_t> out;
    for (int p = 0; p < partitions; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      auto err = producer_->query_watermark_offsets(topic, p, &low, &high, 5000);
      if (err != RdKafka::ERR_NO_ERROR)
        throw std::runtime_error("watermarks: " + RdKafka::err2str(err));
      out.push_back(high);
    }
    return out;
  }

  /// Returns the committed offsets of `group` for partitions 0 .. partitions-1 of `topic` (-1001
  /// where none), read by a consumer that never joins.
  std::vector<std::int64_t> committed(const std::string& group, const std::string& topic,
                                      int partitions) {
    std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
    std::string why;
    conf->set("bootstrap.servers", bootstraps_, why);
    conf->set("group.id", group, why);
    std::unique_ptr<RdKafka::KafkaConsumer> c{RdKafka::KafkaConsumer::create(conf.get(), why)};
    std::vector<RdKafka::TopicPartition*> tps;
    for (int p = 0; p < partitions; ++p)
      tps.push_back(RdKafka::TopicPartition::create(topic, p));
    auto err = c->committed(tps, 10'000);
    std::vector<std::int64_t> out;
    for (auto* tp : tps) {
      out.push_back(tp->offset());
      delete tp;
    }
    c->close();
    if (err != RdKafka::ERR_NO_ERROR)
      throw std::runtime_error("committed: " + RdKafka::err2str(err));
    return out;
  }

  /// Calls `take(message)` for the first `count` records of `topic` (all its `partitions`, read from
  /// the beginning by a consumer in assign mode), or for fewer when `limit` passed first.
  template <class F>
  void read_each(const std::string& topic, int partitions, std::size_t count,
                 std::chrono::milliseconds limit, F take) {
    std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
    std::string why;
    conf->set("bootstrap.servers", bootstraps_, why);
    conf->set("group.id", "reader", why);
    std::unique_ptr<RdKafka::KafkaConsumer> c{RdKafka::KafkaConsumer::create(conf.get(), why)};
    std::vector<RdKafka::TopicPartition*> tps;
    for (int p = 0; p < partitions; ++p)
      tps.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
    c->assign(tps);
    for (auto* tp : tps)
      delete tp;
    std::size_t n = 0;
    auto until = std::chrono::steady_clock::now() + limit;
    while (n < count && std::chrono::steady_clock::now() < until) {
      std::unique_ptr<RdKafka::Message> m{c->consume(100)};
      if (m->err() == RdKafka::ERR_NO_ERROR) {
        take(*m);
        ++n;
      }
    }
    c->close();
  }

  /// Returns the values of the first `count` records of `topic` (see `read_each`).
  std::vector<std::string> read(const std::string& topic, int partitions, std::size_t count,
                                std::chrono::milliseconds limit) {
    std::vector<std::string> out;
    read_each(topic, partitions, count, limit, [&](RdKafka::Message& m) {
      out.emplace_back(static_cast<const char*>(m.payload()), m.len());
    });
    return out;
  }

  /// Returns the mock cluster (to inject failures).
  rd_kafka_mock_cluster_t* cluster() const noexcept {
    return cluster_;
  }

private:
  std::unique_ptr<RdKafka::Producer> producer_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

/// The consumer properties group tests need against the mock.
inline kafka_properties group_properties() {
  return {{"session.timeout.ms", "4000"},
          {"heartbeat.interval.ms", "500"},
          {"auto.offset.reset", "earliest"},
          {"log_level", "3"}};
}

/// Waits until `done()` or `limit` passed, checking every 20 ms; returns `done()`.
template <class F>
bool wait_for(F done, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until)
      return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

} // namespace shardflow::testing
