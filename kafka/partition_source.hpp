// kafka/partition_source.hpp - one assigned Kafka partition as a shard's record source.
//
// The consumer group (kafka/consumer_group.hpp) makes a `kafka_partition` when the group assigns a
// partition: the partition's own queue of fetched messages (librdkafka's partition queue, forwarded
// nowhere), and where the assignment starts (the committed offset, or `auto.offset.reset` when
// there is none). Each feeder incarnation of the partition's shard reads through a fresh
// `kafka_partition_source` over the same `kafka_partition`, so what one incarnation read is known
// to the next:
//
//     rewind(after)  --> seek to after + 1, or to where the assignment started (its committed
//                        offset, else the first offset read); no seek when the queue is there
//                        already (the first attach of an assignment)
//     read(max)      --> up to max messages taken from the partition queue without waiting; the
//                        sequence number is the offset, key and value are the record's key and data,
//                        the headers its attributes (in order; none: no attributes), the message
//                        timestamp its arrival time; messages below the position (left
//                        in the queue from before a seek) are dropped
//     at_end         --> never: a partition has no end
//
// Backpressure: the poll thread (not the source) pauses the partition while its queue holds more
// than the group's `pause_above` messages, i.e. while the shard holds its credit and does not read,
// and resumes it below `resume_below` (see `backpressure`). librdkafka's own prefetch limit, sized
// from the shard's credit by the group (`queued.min.messages`, see kafka/consumer_group.hpp),
// bounds the queue before that without dropping anything. Pausing is the last resort, not the
// bound: librdkafka 2.0.2 empties a paused partition's queue without handing it out (seen in issue
// 16: 6,191 queued, then 1, nothing read) and fetches it again on resume.
//
// Reads take up to 1,024 messages per librdkafka call (`rd_kafka_consume_batch_queue`). In
// librdkafka 2.0.2 that call loses the messages it holds when a pause or resume of the partition
// runs meanwhile (its known issue "Poor Consumer batch API messaging guarantees", fixed in 2.1.0):
// the poll thread pauses and resumes through `set_paused`, under the same mutex as `read`. Seeks
// come from the feeder itself (`rewind`), between reads.
//
// Wake-up: the queue's event callback (librdkafka calls it, under the queue's lock, when the queue
// goes from empty to not empty) wakes the feeder (`on_readable`), so fetched records do not wait
// for its next poll. The callback is disabled before the queue handle is released: librdkafka's
// partition queue lives on after it.
//
// Threading: one feeder reads at a time; the poll thread closes the queue (after the shard has
// stopped) and reads its length, so the queue handle is guarded by a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <shardflow/core/record_source.hpp>

namespace shardflow {

/// One assigned partition, shared by the poll thread and the feeders of its shard.
class kafka_partition {
public:
  /// Takes partition `partition` of `topic` from `consumer`'s assignment into a queue of its own;
  /// `start` is its committed offset, if any.
  kafka_partition(RdKafka::KafkaConsumer* consumer, shard_id id, std::string topic,
                  std::int32_t partition, std::optional<std::int64_t> start);

  /// Destroys the queue (if `close_queue` did not).
  ~kafka_partition();

  kafka_partition(const kafka_partition&) = delete;
  kafka_partition& operator=(const kafka_partition&) = delete;

  /// Returns the shard id ("topic-partition").
  const shard_id& id() const noexcept {
    return id_;
  }

  const std::string& topic() const noexcept {
    return topic_;
  }

  std::int32_t partition() const noexcept {
    return partition_;
  }

  /// Releases the queue: reads return nothing from now on. Call before the consumer is closed.
  void close_queue();

  /// Returns the number of messages waiting in the queue.
  std::size_t queued() const;

  /// Whether the poll thread paused the partition (for backpressure).
  std::atomic<bool> paused{false};

  /// Pauses (true) or resumes fetching the partition and sets `paused` when librdkafka agreed;
  /// never while a read holds messages (see the file comment).
  RdKafka::ErrorCode set_paused(bool pause);

  /// Positions the next read after `after`; see the file comment.
  void rewind(const std::optional<sequence_number>& after);

  /// Returns up to `max` records without waiting.
  record_batch read(std::size_t max);

  /// Calls `wake` (on a librdkafka thread) each time the queue goes from empty to not empty,
  /// instead of the `wake` given before; see record_source::on_readable.
  void on_readable(std::function<void()> wake);

private:
  void seek(std::int64_t offset);
  static void readable(rd_kafka_t*, void* self);

  RdKafka::KafkaConsumer* consumer_;
  shard_id id_;
  std::string topic_;
  std::int32_t partition_;
  std::optional<std::int64_t> start_;
  std::optional<std::int64_t> origin_; // the first offset read in this assignment
  std::optional<std::int64_t> next_;   // the offset the next record must have at least
  bool dropped_ = false; // a read threw after taking messages: `next_` is no position to trust
  mutable std::mutex mtx_;
  rd_kafka_queue_t* queue_ = nullptr;
  // Called under the queue's lock by librdkafka; replaced only with the callback disabled.
  std::function<void()> wake_;
};

/// A feeder incarnation's view of a `kafka_partition`.
class kafka_partition_source final : public record_source {
public:
  explicit kafka_partition_source(std::shared_ptr<kafka_partition> part) : part_(std::move(part)) {
    // nop
  }

  void rewind(const std::optional<sequence_number>& after) override {
    part_->rewind(after);
  }

  record_batch read(std::size_t max) override {
    return part_->read(max);
  }

  void on_readable(std::function<void()> wake) override {
    part_->on_readable(std::move(wake));
  }

  bool at_end() const override {
    return false;
  }

private:
  std::shared_ptr<kafka_partition> part_;
};

/// What the poll thread does about one partition's pause state.
enum class pause_action { none, pause, resume };

/// Returns whether to pause a partition holding `queued` messages (`paused` now): pause above
/// `pause_above`, resume at or below `resume_below`.
pause_action backpressure(std::size_t queued, bool paused, std::size_t pause_above,
                          std::size_t resume_below) noexcept;

} // namespace shardflow
