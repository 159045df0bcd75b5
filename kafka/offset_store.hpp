// kafka/offset_store.hpp - the checkpoint store of a Kafka source: the consumer group's committed
// offsets.
//
// A shard's checkpoint at offset `o` commits `o + 1` for its partition (Kafka's committed offset is
// the next record to read), with explicit offsets, and `save` returns only once the group
// coordinator accepted it. A commit waits at most `commit_timeout` for the coordinator's answer
// (librdkafka's commitSync waits for a coordinator while every broker is down, and the sink, the
// revoke and the close behind it waited with it): unanswered, it is checkpoint_failed and the shard
// retries with backoff (and `on_unanswered` is told); the request itself stays queued in
// librdkafka, in order, so a later commit of the partition supersedes it. `load` hands back the
// committed offset the partition was assigned with (or the last one this store committed since) as
// the position `offset - 1`; no commit, or a commit of 0, is the empty position (the source then
// starts where the assignment started: the committed offset or `auto.offset.reset`).
//
// Fencing: a partition is enlisted when the group assigns it and delisted when it is revoked or
// lost; a save for a partition not enlisted, or from an incarnation loaded before the current
// assignment, is refused with errc::stale_generation (the shard then ends at once), so a shard of
// an old group generation never commits. Generations come from one counter for the whole store, so
// an incarnation of an earlier assignment of the same partition is always older. The coordinator
// fences too: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID are stale_generation;
// REBALANCE_IN_PROGRESS is stale_generation once the partition's revoke has begun (`revoking`;
// librdkafka's mock cluster refuses every commit during a rebalance) and checkpoint_failed (the
// shard retries) before. An end marker (an empty checkpoint) commits nothing: a partition has no
// end.
//
// Thread safety: every member may be called from any thread (the sink's and the poll thread); a
// commit holds the store's lock, so `delist` and `detach` wait for one in flight.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafkacpp.h>

#include <shardflow/core/checkpoint_store.hpp>

namespace shardflow {

/// The group's committed offsets as a checkpoint store; see the file comment.
class kafka_offset_store final : public checkpoint_store {
public:
  /// Commits through `consumer` (which must outlive the store or be `detach`ed first), each commit
  /// waiting at most `commit_timeout` for its answer.
  explicit kafka_offset_store(RdKafka::KafkaConsumer* consumer,
                              std::chrono::milliseconds commit_timeout = std::chrono::seconds(10));

  /// Told (on the committing thread, with the store's error text) each time a commit gets no
  /// answer within the commit timeout; the group takes that as a sign that the cluster is out of
  /// reach (kafka/consumer_group.hpp). Set before the first save; may be empty.
  void on_unanswered(std::function<void(const std::string&)> tell);

  /// Partition `partition` of `topic` is assigned as shard `id`, with the group's committed offset
  /// (the next record to read), if any.
  void enlist(const shard_id& id, const std::string& topic, std::int32_t partition,
              std::optional<std::int64_t> committed);

  /// The partition's revoke has begun: a commit refused because a rebalance is in progress fences
  /// the shard instead of being retried.
  void revoking(const shard_id& id);

  /// The partition is no longer assigned here: every later save for it is stale.
  void delist(const shard_id& id);
  /// The same for every partition of `ids`, under one lock (no commit of one of them in between).
  void delist(const std::vector<shard_id>& ids);

  /// The consumer is closing: every partition is delisted and the consumer is not used again.
  void detach();

  /// The cluster is gone (the group failed on its connect timeout): every later save is refused as
  /// stale, naming `why`, so stopping shards end at once instead of retrying commits that cannot
  /// be answered. What they made durable after the last commit is read again by the partition's
  /// next owner (at-least-once).
  void abandon(const std::string& why);

  /// Returns the offset this store last committed for `id` (or the one it was last assigned
  /// with); still after the partition was delisted, the store detached or the group stopped.
  std::optional<std::int64_t> committed(const shard_id& id) const;

  /// Returns the number of successful commits.
  std::uint64_t commits() const;

  stored_checkpoint load(const shard_id& id) override;
  void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) override;

private:
  struct row {
    std::string topic;
    std::int32_t partition = 0;
    std::optional<std::int64_t> committed;
    std::uint64_t generation = 0;
    bool revoking = false;
  };

  void commit(const shard_id& id, row& r, std::int64_t offset);

  mutable std::mutex mtx_;
  RdKafka::KafkaConsumer* consumer_;
  std::chrono::milliseconds commit_timeout_;
  std::map<shard_id, row> rows_;
  std::map<shard_id, std::int64_t> last_; // committed(): kept after delist and detach
  std::uint64_t next_generation_ = 0;
  std::uint64_t commits_ = 0;
  std::string abandoned_; // why every save is refused; empty: none is
  std::function<void(const std::string&)> on_unanswered_;
};

} // namespace shardflow
