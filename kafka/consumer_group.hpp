// kafka/consumer_group.hpp - a Kafka consumer group as a source of shards: every partition the
// group assigns to this member becomes a shard group under a host's runtime.
//
// One consumer (librdkafka's KafkaConsumer, manual commits only: `enable.auto.commit` and
// `enable.auto.offset.store` are forced off) and one poll thread per group member:
//
//     start --> subscribe(topics) --> poll thread: consume(poll_interval) serves rebalances and
//               errors; between polls, backpressure (pause / resume per partition)
//     assign(parts)  --> committed(parts); assign(parts) at those offsets (none: auto.offset.reset);
//                        per partition: its own queue (kafka/partition_source.hpp), enlisted in the
//                        offset store, and a shard `TOPIC-PARTITION` started on the runtime from the
//                        host's `shard_group_config` (same shard actor, batch processor and flusher
//                        as every source; sequence number = offset)
//     revoke(parts)  --> per partition, before the callback returns: marked revoking, the shard
//                        stopped gracefully (final flush, checkpoint, commit), delisted, its queue
//                        released; then unassign()
//     lost(parts)    --> (assignment_lost) delisted FIRST, then stopped: nothing is committed
//     stop()         --> every shard stopped gracefully and committed while the group is stable,
//                        then close() (the consumer leaves the group, waiting `commit_timeout` at
//                        most) and the poll thread ends
//
// Memory: what a member holds per assigned partition is its shard's credit (records handed to the
// shard, not yet processed) plus librdkafka's prefetch queue, whose defaults (100,000 messages or
// 64 MiB per partition, fetched 1 MiB per partition and 50 MiB per response) are far larger than a
// credit: 32 partitions behind a slow sink held 600 MiB for 128 MB of records (issue 16), about
// 440 bytes per prefetched 100-byte message. Unless `properties` set them, the member therefore
// keeps `prefetch_messages` (a quarter of the shard's credit) queued per partition and fetches in
// small responses (`partition_fetch_bytes`, `fetch_bytes`: a response buffer lives until its last
// message is read, so a small one is not held by one slow partition). librdkafka stops fetching a
// partition whose queue is over that and fetches it again once the shard has read it down; nothing
// is dropped (unlike `pause`, after which librdkafka 2.0.2 empties the queue and fetches it again:
// with a 10 ms check, pausing above 5,000 messages livelocked the consume bench).
//
// Checkpoints go to a detached checkpoint sink over a `kafka_offset_store` (kafka/offset_store.hpp):
// a checkpoint at offset o commits o + 1, only once o is durable with everything before it; a shard
// of an old assignment never commits. Use an eager assignor (`range`, `roundrobin`; the default is
// `range`): librdkafka 2.0.2 loses the assignment under `cooperative-sticky` when commits are in
// flight (its issue #4059). A fatal consumer error (librdkafka's fatal errors, an unknown topic, an
// authorization failure) ends consuming: the poll thread stops every shard gracefully, closes the
// consumer and `failure()` says why. Transient errors (a broker down) are logged and ridden out,
// but a cluster out of reach for longer than `connect_timeout` is a failure too: never reached
// since the start, every broker down since librdkafka said so, or silent since a commit got no
// answer within `commit_timeout` (a network that drops packets closes no connection, so librdkafka
// may never say that its brokers are down); the poll thread then asks for metadata once per
// `probe_interval`, and an answer ends the count.
//
// Threading: while the group runs, its poll thread calls the runtime's blocking facade
// (start_shard, stop_shard), so the host must not call those on the same runtime meanwhile; it may
// read meters and the group's accessors from any thread. Call `stop()` before shutting the runtime
// down.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor.hpp>

#include <shardflow/actors/runtime.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/core/log.hpp>
#include <shardflow/kafka/offset_store.hpp>
#include <shardflow/kafka/partition_source.hpp>
#include <shardflow/kafka/properties.hpp>

namespace shardflow {

/// Configuration of one member of a consumer group.
struct kafka_source_config {
  /// bootstrap.servers: HOST:PORT[,...].
  std::string brokers;
  /// The topics to subscribe to.
  std::vector<std::string> topics;
  /// group.id.
  std::string group;
  /// librdkafka properties (`-X`), applied before the ones the source sets itself.
  kafka_properties properties;
  /// partition.assignment.strategy unless `properties` sets it: an eager one.
  std::string assignor = "range";
  /// How long one poll of the consumer waits for a rebalance or an error.
  std::chrono::milliseconds poll_interval{100};
  /// Messages librdkafka keeps prefetched per partition (`queued.min.messages`) unless
  /// `properties` sets it; 0: a quarter of the shard's credit (at least 1). The shard's credit is
  /// the buffer that keeps it busy; the prefetch only bridges a fetch round trip.
  std::size_t prefetch_messages = 0;
  /// Bytes fetched per partition per request (`max.partition.fetch.bytes`) unless `properties`
  /// sets it.
  std::size_t partition_fetch_bytes = std::size_t{256} << 10;
  /// Bytes per fetch response (`fetch.max.bytes`) unless `properties` sets it.
  std::size_t fetch_bytes = std::size_t{1} << 20;
  /// Pause a partition whose queue holds more messages than this (its shard is behind) ...
  std::size_t pause_above = 50'000;
  /// ... and resume it once the queue is down to this.
  std::size_t resume_below = 10'000;
  /// How long fetching committed offsets may take at an assignment.
  std::chrono::milliseconds committed_timeout{10'000};
  /// How long a commit waits for the coordinator's answer before its shard retries it (with
  /// backoff); see kafka/offset_store.hpp.
  std::chrono::milliseconds commit_timeout{10'000};
  /// How long the cluster may stay out of reach (never reached since the start, every broker
  /// down, or no answer to a commit nor to the metadata asked for since) before consuming ends
  /// with a failure; zero: retry for ever. A broker restart shorter than this is ridden out.
  std::chrono::milliseconds connect_timeout{30'000};
  /// While the cluster is out of reach, how often the poll thread asks it for metadata (each ask
  /// waits up to this long).
  std::chrono::milliseconds probe_interval{1'000};
  /// Where the group logs (rebalances, transient errors); empty: `stderr_log("shardflow")`.
  log_sink log;
};

/// Returns the librdkafka prefetch properties the member sets for shards with `credit` (see the
/// file comment): `queued.min.messages`, `max.partition.fetch.bytes` and `fetch.max.bytes`, each
/// only when `cfg.properties` does not set it.
kafka_properties kafka_prefetch_properties(const kafka_source_config& cfg, std::size_t credit);

/// Returns the shard id of partition `partition` of `topic`: "topic-partition".
shard_id kafka_shard_id(const std::string& topic, std::int32_t partition);

/// One member of a consumer group feeding shards; see the file comment.
class kafka_consumer_group {
public:
  /// Creates the consumer and starts the poll thread; shards are made from `shard` (its id, source,
  /// sink and finite are set per partition).
  /// @throws shardflow::error: errc::bad_input for a bad property or an empty topic list or group,
  ///         errc::io_failed when librdkafka refuses to make the consumer or to subscribe.
  static std::unique_ptr<kafka_consumer_group> start(runtime& rt, kafka_source_config cfg,
                                                     shard_group_config shard);

  /// Stops (see `stop`).
  ~kafka_consumer_group();

  /// Stops every shard gracefully (flush, checkpoint, commit), leaves the group and ends the poll
  /// thread. Idempotent.
  void stop();

  /// Returns why consuming ended by itself (a fatal error), or empty.
  std::string failure() const;

  /// Returns whether the poll thread has ended (after `stop` or a fatal error).
  bool finished() const noexcept {
    return finished_.load();
  }

  /// Returns the shards of the partitions assigned now.
  std::vector<shard_id> assigned() const;

  /// Returns the number of assignments received (rebalances that gave this member partitions).
  std::uint64_t assignments() const noexcept {
    return assignments_.load();
  }

  /// Returns the offset store (what was committed).
  const std::shared_ptr<kafka_offset_store>& store() const noexcept {
    return store_;
  }

  /// Returns the partitions paused now for backpressure. A pause seldom lasts: librdkafka 2.0.2
  /// empties a paused partition's queue (see kafka/partition_source.hpp), so the next check
  /// resumes it and the next fetch may pause it again.
  std::vector<shard_id> paused() const;

  // -- called from librdkafka's callbacks on the poll thread (internal) --------------------------

  void on_assign(std::vector<RdKafka::TopicPartition*>& parts);
  void on_revoke(std::vector<RdKafka::TopicPartition*>& parts);
  void on_error(const std::string& what, bool fatal);
  void on_all_brokers_down(const std::string& what);
  /// From the checkpoint sink's thread: a commit got no answer within the commit timeout.
  void on_unanswered(const std::string& what);

private:
  kafka_consumer_group(runtime& rt, kafka_source_config cfg, shard_group_config shard);

  void poll_loop();
  void check_backpressure();
  void check_reachable();
  void start_partition(const std::shared_ptr<kafka_partition>& part);
  void stop_partition(const shard_id& id, bool lost);
  void stop_all();
  void close_consumer(); // leaves the group, bounded by commit_timeout

  runtime& rt_;
  kafka_source_config cfg_;
  shard_group_config shard_;
  std::unique_ptr<RdKafka::RebalanceCb> rebalance_cb_;
  std::unique_ptr<RdKafka::EventCb> event_cb_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::shared_ptr<kafka_offset_store> store_;
  caf::actor sink_;
  // Guards parts_, failure_ and unanswered_; never held while calling the store, whose
  // on_unanswered callback takes it under the store's own lock.
  mutable std::mutex mtx_;
  std::map<shard_id, std::shared_ptr<kafka_partition>> parts_;
  std::string failure_;
  std::optional<std::string> unanswered_; // a commit's, not yet seen by the poll thread
  // Poll thread only: since when the cluster is out of reach (set at the start: not reached yet),
  // how that showed, why, whether it was ever reached, and when it was last asked.
  enum class down_how { brokers_down, silent }; // librdkafka said so; a commit was not answered
  std::optional<std::chrono::steady_clock::time_point> down_since_;
  down_how down_how_ = down_how::brokers_down;
  std::string down_reason_;
  bool reached_ = false;
  bool probe_failed_ = false; // a metadata probe went unanswered in this outage
  bool unreachable_ = false; // the connect timeout passed: nothing more can be committed
  std::chrono::steady_clock::time_point last_probe_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::atomic<std::uint64_t> assignments_{0};
  std::thread poller_;
};

} // namespace shardflow
