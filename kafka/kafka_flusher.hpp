// kafka/kafka_flusher.hpp - the Kafka flusher: a shard's records produced to a topic, each token
// returned only from its record's successful delivery report.
//
// Each flusher (one per shard incarnation) owns a producer with `acks=all` and
// `enable.idempotence=true` (forced after the user's properties), so a record is durable on every
// in-sync replica when its report comes back, and librdkafka's retries neither reorder nor
// duplicate it. The flusher is asynchronous, the project's first: `add` hands the record to
// librdkafka (key = the record's partition key, value = its data, headers = its attributes;
// partitioned by the producer's partitioner) and returns at once; `heartbeat` and `flush(partial)`
// serve delivery reports without waiting and return the tokens of the records delivered since;
// only `flush(full)` (a stopping shard) waits, up to `flush_timeout`, for everything outstanding.
// So the shard does not block on the network, except at the in-flight cap: after `add` answered
// `full`, `flush(partial)` waits for the first delivery reports (not for all: the pipe stays full),
// and once when it is made: the constructor asks the cluster for the topic's metadata (one round
// trip, at most `metadata_timeout`). Without that, librdkafka 2.0.2 learns the partitions of a
// topic it first hears of after its connection is up only from its topic scan, once a second:
// every record waits in the unassigned queue until then, and the shard, full at the in-flight cap,
// holds a scheduler thread in `flush(partial)` meanwhile (issue 16: the produce row's bimodal runs,
// 0.5 vs 3.7 M rec/s). A checkpoint passes a record only after the broker acknowledged it.
//
//     add(x, token) --> produce(copy of x)  --> full when `max_outstanding` are in flight
//     delivery report ok      --> token ready, returned by the next heartbeat or flush
//     delivery report failed  --> (after librdkafka's retries, `message.timeout.ms`) the next call
//                                 throws errc::io_failed naming the topic and the reason: the shard
//                                 fails and its restart replays from the checkpoint
//
// The destructor purges what is still queued without waiting (those records are after the last
// checkpoint and come again to the next incarnation).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <librdkafka/rdkafkacpp.h>

#include <shardflow/core/flusher.hpp>
#include <shardflow/kafka/properties.hpp>

namespace shardflow {

/// Options of the Kafka flusher.
struct kafka_flusher_config {
  /// bootstrap.servers of the output cluster.
  std::string brokers;
  /// The topic every record goes to.
  std::string topic;
  /// librdkafka producer properties (`-X`), applied before `acks` and `enable.idempotence`.
  kafka_properties properties;
  /// Records in flight at most; `add` answers `full` beyond it.
  std::size_t max_outstanding = 10'000;
  /// How long `flush(full)` waits for the outstanding delivery reports.
  std::chrono::milliseconds flush_timeout{30'000};
  /// How long the constructor waits for the topic's metadata (the flusher starts without it when
  /// it does not come: librdkafka's own scan finds the topic within a second, so longer gains
  /// nothing); 0: do not ask.
  std::chrono::milliseconds metadata_timeout{1'000};
  /// Where the producer's librdkafka log lines and errors go; empty: `stderr_log("shardflow")`.
  log_sink log;
};

/// Produces a shard's records to a Kafka topic; see the file comment.
class kafka_flusher final : public flusher {
public:
  /// Makes the producer of shard `id`.
  /// @throws shardflow::error: errc::bad_input for a bad property, errc::io_failed when librdkafka
  ///         cannot make the producer.
  kafka_flusher(const shard_id& id, kafka_flusher_config cfg);
  ~kafka_flusher() override;

  add_result add(const stream_record& x, flush_token token) override;
  std::vector<flush_token> flush(flush_mode mode) override;
  std::vector<flush_token> heartbeat() override;

  /// Returns the records produced and not yet reported.
  std::size_t outstanding() const noexcept {
    return outstanding_;
  }

  /// Returns the topic's partition count learned when the flusher was made, or 0 (no answer within
  /// `metadata_timeout`, or the topic does not exist yet).
  int partitions() const noexcept {
    return partitions_;
  }

  /// What the delivery reports leave for the flusher (internal).
  struct reports;

private:
  void learn_topic();
  std::vector<flush_token> collect();

  shard_id id_;
  kafka_flusher_config cfg_;
  std::unique_ptr<reports> reports_;
  std::unique_ptr<RdKafka::DeliveryReportCb> report_cb_;
  std::unique_ptr<kafka_event_log> event_log_; // before producer_: it outlives it
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<RdKafka::Topic> topic_; // holds the topic (and what its metadata said) alive
  std::size_t outstanding_ = 0;
  int partitions_ = 0;
  bool full_ = false; // the last add answered full
};

/// Returns a factory of Kafka flushers with `cfg`.
flusher_factory kafka_flusher_factory(kafka_flusher_config cfg);

} // namespace shardflow
