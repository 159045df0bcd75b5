// kafka/partition_source.cpp - see partition_source.hpp.
#include <shardflow/kafka/partition_source.hpp>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

/// Seeks wait this long for the fetcher to move.
constexpr int seek_timeout_ms = 10'000;

stream_record record_of(const rd_kafka_message_t& m) {
  stream_record x;
  if (m.key != nullptr)
    x.partition_key.assign(static_cast<const char*>(m.key), m.key_len);
  if (m.payload != nullptr)
    x.data.assign(static_cast<const char*>(m.payload), m.len);
  x.sequence.base = sequence_base{static_cast<std::uint64_t>(m.offset)};
  rd_kafka_timestamp_type_t type;
  auto ts = rd_kafka_message_timestamp(&m, &type);
  if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0)
    x.arrival_ms = ts;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr
      && rd_kafka_header_cnt(headers) > 0) {
    auto attrs = std::make_shared<record_attributes>();
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0; !rd_kafka_header_get_all(headers, i, &name, &value, &size); ++i)
      attrs->emplace_back(name, value != nullptr ? std::string{static_cast<const char*>(value), size}
                                                 : std::string{});
    x.attributes = std::move(attrs);
  }
  return x;
}

} // namespace

kafka_partition::kafka_partition(RdKafka::KafkaConsumer* consumer, shard_id id, std::string topic,
                                 std::int32_t partition, std::optional<std::int64_t> start)
  : consumer_(consumer),
    id_(std::move(id)),
    topic_(std::move(topic)),
    partition_(partition),
    start_(start) {
  queue_ = rd_kafka_queue_get_partition(consumer->c_ptr(), topic_.c_str(), partition_);
  if (queue_ == nullptr)
    throw error{errc::io_failed,
                fmt::format("kafka partition {}: librdkafka has no queue for it", id_)};
  rd_kafka_queue_forward(queue_, nullptr);
}

kafka_partition::~kafka_partition() {
  close_queue();
}

void kafka_partition::close_queue() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (queue_ != nullptr) {
    rd_kafka_queue_cb_event_enable(queue_, nullptr, nullptr); // no callback runs after this
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
}

void kafka_partition::readable(rd_kafka_t*, void* self) {
  auto& wake = static_cast<kafka_partition*>(self)->wake_;
  if (wake)
    wake();
}

void kafka_partition::on_readable(std::function<void()> wake) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (queue_ == nullptr)
    return;
  // Disabling takes the queue's lock, under which the callback runs: none runs while wake_ changes.
  rd_kafka_queue_cb_event_enable(queue_, nullptr, nullptr);
  wake_ = std::move(wake);
  if (wake_)
    rd_kafka_queue_cb_event_enable(queue_, &kafka_partition::readable, this);
}

std::size_t kafka_partition::queued() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return queue_ != nullptr ? rd_kafka_queue_length(queue_) : 0;
}

void kafka_partition::rewind(const std::optional<sequence_number>& after) {
  std::optional<std::int64_t> target;
  if (after) {
    auto o = after->base.to_uint64();
    if (!o)
      throw error{errc::bad_sequence_number,
                  fmt::format("kafka partition {}: checkpoint {} is not an offset", id_,
                              to_string(*after))};
    target = static_cast<std::int64_t>(*o) + 1;
  } else {
    target = start_ ? start_ : origin_;
  }
  if (!target)
    return; // nothing read yet and no commit: the assignment's own start
  if (!dropped_ && (next_ == target || (!next_ && start_ == target))) {
    next_ = target;
    return;
  }
  seek(*target);
}

void kafka_partition::seek(std::int64_t offset) {
  std::unique_ptr<RdKafka::TopicPartition> tp{
    RdKafka::TopicPartition::create(topic_, partition_, offset)};
  auto err = consumer_->seek(*tp, seek_timeout_ms);
  if (err != RdKafka::ERR_NO_ERROR)
    throw error{errc::io_failed, fmt::format("kafka partition {}: seek to offset {} failed: {}",
                                             id_, offset, RdKafka::err2str(err))};
  next_ = offset;
  dropped_ = false;
}

RdKafka::ErrorCode kafka_partition::set_paused(bool pause) {
  std::lock_guard<std::mutex> guard{mtx_}; // not while a read holds messages: see the header
  std::unique_ptr<RdKafka::TopicPartition> tp{RdKafka::TopicPartition::create(topic_, partition_)};
  std::vector<RdKafka::TopicPartition*> v{tp.get()};
  const auto err = pause ? consumer_->pause(v) : consumer_->resume(v);
  if (err == RdKafka::ERR_NO_ERROR)
    paused = pause;
  return err;
}

record_batch kafka_partition::read(std::size_t max) {
  std::vector<stream_record> out;
  std::lock_guard<std::mutex> guard{mtx_};
  if (queue_ == nullptr || max == 0)
    return {};
  // One call per 1,024 messages, not one per message.
  std::vector<rd_kafka_message_t*> taken(std::min<std::size_t>(max, 1024));
  while (out.size() < max) {
    const auto want = std::min(taken.size(), max - out.size());
    const auto n = rd_kafka_consume_batch_queue(queue_, 0, taken.data(), want);
    if (n <= 0)
      break;
    struct release_all {
      rd_kafka_message_t** xs;
      ssize_t n;
      ~release_all() {
        for (ssize_t i = 0; i < n; ++i)
          rd_kafka_message_destroy(xs[i]);
      }
    } release{taken.data(), n};
    out.reserve(out.size() + static_cast<std::size_t>(n));
    // Whatever this call took is lost with an exception (the messages are destroyed, the records
    // made so far too): the next rewind seeks even to where the partition seems to be.
    dropped_ = true;
    for (ssize_t i = 0; i < n; ++i) {
      const auto& m = *taken[static_cast<std::size_t>(i)];
      if (m.err == RD_KAFKA_RESP_ERR__FATAL)
        throw error{errc::io_failed,
                    fmt::format("kafka partition {}: {}", id_, rd_kafka_message_errstr(&m))};
      if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        continue; // end of partition, or a transient error librdkafka retries itself
      if (next_ && m.offset < *next_)
        continue; // fetched before a seek back
      if (!origin_)
        origin_ = m.offset;
      next_ = m.offset + 1;
      out.push_back(record_of(m));
    }
    dropped_ = false;
    if (static_cast<std::size_t>(n) < want)
      break; // the queue is empty now
  }
  return record_batch{std::move(out)};
}

pause_action backpressure(std::size_t queued, bool paused, std::size_t pause_above,
                          std::size_t resume_below) noexcept {
  if (!paused && queued > pause_above)
    return pause_action::pause;
  if (paused && queued <= resume_below)
    return pause_action::resume;
  return pause_action::none;
}

} // namespace shardflow
