// kafka/kafka_flusher.cpp - see kafka_flusher.hpp.
#include <shardflow/kafka/kafka_flusher.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

static_assert(sizeof(void*) >= sizeof(flush_token), "a token travels as a message's opaque");

struct kafka_flusher::reports {
  std::vector<flush_token> delivered;
  std::string failure; // the first failed delivery
};

namespace {

class report_cb final : public RdKafka::DeliveryReportCb {
public:
  explicit report_cb(kafka_flusher::reports* out) : out_(out) {
    // nop
  }

  void dr_cb(RdKafka::Message& m) override {
    if (m.err() == RdKafka::ERR_NO_ERROR) {
      out_->delivered.push_back(reinterpret_cast<std::uintptr_t>(m.msg_opaque()));
    } else if (out_->failure.empty()) {
      out_->failure = m.partition() >= 0
                        ? fmt::format("{} (partition {})", m.errstr(), m.partition())
                        : m.errstr();
    }
  }

private:
  kafka_flusher::reports* out_;
};

/// The record's attributes as Kafka headers (owned by the caller until a produce succeeds), or null.
RdKafka::Headers* headers_of(const stream_record& x) {
  if (!x.attributes || x.attributes->empty())
    return nullptr;
  auto* headers = RdKafka::Headers::create();
  for (const auto& [key, value] : *x.attributes)
    headers->add(key, value.data(), value.size());
  return headers;
}

} // namespace

kafka_flusher::kafka_flusher(const shard_id& id, kafka_flusher_config cfg)
  : id_(id), cfg_(std::move(cfg)), reports_(std::make_unique<reports>()) {
  auto conf = make_kafka_conf(cfg_.properties, "kafka flusher");
  set_kafka_property(*conf, "bootstrap.servers", cfg_.brokers, "kafka flusher");
  set_kafka_property(*conf, "acks", "all", "kafka flusher");
  set_kafka_property(*conf, "enable.idempotence", "true", "kafka flusher");
  report_cb_ = std::make_unique<report_cb>(reports_.get());
  event_log_ = std::make_unique<kafka_event_log>(fmt::format("{}: kafka flusher", id_), cfg_.log);
  std::string why;
  if (conf->set("dr_cb", report_cb_.get(), why) != RdKafka::Conf::CONF_OK
      || conf->set("event_cb", static_cast<RdKafka::EventCb*>(event_log_.get()), why)
           != RdKafka::Conf::CONF_OK)
    throw error{errc::io_failed, fmt::format("kafka flusher of shard {}: {}", id_, why)};
  producer_.reset(RdKafka::Producer::create(conf.get(), why));
  if (!producer_)
    throw error{errc::io_failed,
                fmt::format("kafka flusher of shard {}: no producer: {}", id_, why)};
  learn_topic();
}

void kafka_flusher::learn_topic() {
  // See the file comment: the partitions are known before the first record, so no record waits
  // for librdkafka's once-a-second topic scan. Not knowing them is no error (a topic created by
  // its first record, a cluster still starting): librdkafka finds them itself.
  std::string why;
  topic_.reset(RdKafka::Topic::create(producer_.get(), cfg_.topic, nullptr, why));
  if (!topic_ || cfg_.metadata_timeout.count() <= 0)
    return;
  RdKafka::Metadata* md = nullptr;
  auto err = producer_->metadata(false, topic_.get(), &md,
                                 static_cast<int>(cfg_.metadata_timeout.count()));
  std::unique_ptr<RdKafka::Metadata> owned{md};
  if (err != RdKafka::ERR_NO_ERROR || !owned)
    return;
  for (const auto* t : *owned->topics())
    if (t->topic() == cfg_.topic && t->err() == RdKafka::ERR_NO_ERROR)
      partitions_ = static_cast<int>(t->partitions()->size());
}

kafka_flusher::~kafka_flusher() {
  if (producer_) {
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT
                     | RdKafka::Producer::PURGE_NON_BLOCKING);
    producer_->poll(0);
  }
}

add_result kafka_flusher::add(const stream_record& x, flush_token token) {
  if (outstanding_ >= cfg_.max_outstanding) {
    full_ = true;
    return add_result::full;
  }
  auto* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(token));
  for (int attempt = 0;; ++attempt) {
    auto* headers = headers_of(x);
    auto err = producer_->produce(cfg_.topic, RdKafka::Topic::PARTITION_UA,
                                  RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(x.data.data()),
                                  x.data.size(), x.partition_key.data(), x.partition_key.size(), 0,
                                  headers, opaque);
    if (err == RdKafka::ERR_NO_ERROR)
      break; // librdkafka owns the headers now
    delete headers;
    if (err == RdKafka::ERR__QUEUE_FULL && outstanding_ > 0) {
      full_ = true; // librdkafka's own queue is full: a flush makes room
      return add_result::full;
    }
    if (err != RdKafka::ERR__QUEUE_FULL || attempt >= 100)
      throw error{errc::io_failed, fmt::format("kafka flusher of shard {}: producing to {} "
                                               "failed: {}",
                                               id_, cfg_.topic, RdKafka::err2str(err))};
    producer_->poll(10);
  }
  ++outstanding_;
  full_ = false;
  return add_result::added;
}

std::vector<flush_token> kafka_flusher::collect() {
  producer_->poll(0);
  if (!reports_->failure.empty())
    throw error{errc::io_failed, fmt::format("kafka flusher of shard {}: delivery to {} failed: {}",
                                             id_, cfg_.topic, reports_->failure)};
  auto result = std::exchange(reports_->delivered, {});
  outstanding_ -= result.size();
  return result;
}

std::vector<flush_token> kafka_flusher::flush(flush_mode mode) {
  if (mode == flush_mode::partial && full_) {
    // Full: wait for the first reports (at most flush_timeout), not for all of them, which the
    // processor's next step (flush(full)) would do, draining the pipe each max_outstanding.
    auto result = collect();
    auto until = std::chrono::steady_clock::now() + cfg_.flush_timeout;
    while (result.empty() && outstanding_ > 0 && std::chrono::steady_clock::now() < until) {
      producer_->poll(10);
      result = collect();
    }
    return result;
  }
  if (mode == flush_mode::partial || outstanding_ == 0)
    return collect();
  auto err = producer_->flush(static_cast<int>(cfg_.flush_timeout.count()));
  auto result = collect();
  if (err != RdKafka::ERR_NO_ERROR || outstanding_ > 0)
    throw error{errc::io_failed,
                fmt::format("kafka flusher of shard {}: {} record{} to {} not delivered within {} "
                            "ms: {}",
                            id_, outstanding_, outstanding_ == 1 ? "" : "s", cfg_.topic,
                            cfg_.flush_timeout.count(),
                            RdKafka::err2str(err))};
  return result;
}

std::vector<flush_token> kafka_flusher::heartbeat() {
  return collect();
}

flusher_factory kafka_flusher_factory(kafka_flusher_config cfg) {
  return [cfg](const shard_id& id) { return std::make_unique<kafka_flusher>(id, cfg); };
}

} // namespace shardflow
