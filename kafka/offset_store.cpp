// kafka/offset_store.cpp - see offset_store.hpp.
#include <shardflow/kafka/offset_store.hpp>

#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

[[noreturn]] void throw_stale(const shard_id& id, const std::string& why) {
  throw error{errc::stale_generation,
              fmt::format("kafka offset of shard {} not committed: {}", id, why)};
}

} // namespace

kafka_offset_store::kafka_offset_store(RdKafka::KafkaConsumer* consumer,
                                       std::chrono::milliseconds commit_timeout)
  : consumer_(consumer), commit_timeout_(commit_timeout) {
  // nop
}

void kafka_offset_store::on_unanswered(std::function<void(const std::string&)> tell) {
  std::lock_guard<std::mutex> guard{mtx_};
  on_unanswered_ = std::move(tell);
}

void kafka_offset_store::enlist(const shard_id& id, const std::string& topic,
                                std::int32_t partition, std::optional<std::int64_t> committed) {
  std::lock_guard<std::mutex> guard{mtx_};
  rows_[id] = row{topic, partition, committed, ++next_generation_, false};
  if (committed)
    last_[id] = *committed;
}

void kafka_offset_store::revoking(const shard_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = rows_.find(id); i != rows_.end())
    i->second.revoking = true;
}

void kafka_offset_store::delist(const shard_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  rows_.erase(id);
}

void kafka_offset_store::delist(const std::vector<shard_id>& ids) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (const auto& id : ids)
    rows_.erase(id);
}

void kafka_offset_store::detach() {
  std::lock_guard<std::mutex> guard{mtx_};
  rows_.clear();
  consumer_ = nullptr;
  on_unanswered_ = nullptr;
}

void kafka_offset_store::abandon(const std::string& why) {
  std::lock_guard<std::mutex> guard{mtx_};
  abandoned_ = why;
}

std::optional<std::int64_t> kafka_offset_store::committed(const shard_id& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = last_.find(id); i != last_.end())
    return i->second;
  return std::nullopt;
}

std::uint64_t kafka_offset_store::commits() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return commits_;
}

stored_checkpoint kafka_offset_store::load(const shard_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = rows_.find(id);
  if (i == rows_.end())
    throw error{errc::checkpoint_failed,
                fmt::format("kafka offset of shard {} cannot be loaded: the partition is not "
                            "assigned here",
                            id)};
  stored_checkpoint result;
  result.generation = i->second.generation = ++next_generation_;
  if (auto c = i->second.committed; c && *c > 0) {
    sequence_number pos;
    pos.base = sequence_base{static_cast<std::uint64_t>(*c - 1)};
    result.position = pos;
  }
  return result;
}

namespace {

// Commits `offset` for one partition and waits at most `timeout` for the coordinator's answer: its
// error, the partition's, or ERR__TIMED_OUT (the request stays queued in librdkafka).
RdKafka::ErrorCode commit_within(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                 std::int32_t partition, std::int64_t offset,
                                 std::chrono::milliseconds timeout) {
  rd_kafka_t* rk = consumer.c_ptr();
  std::unique_ptr<rd_kafka_queue_t, void (*)(rd_kafka_queue_t*)> answers{rd_kafka_queue_new(rk),
                                                                          rd_kafka_queue_destroy};
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)>
    offsets{rd_kafka_topic_partition_list_new(1), rd_kafka_topic_partition_list_destroy};
  rd_kafka_topic_partition_list_add(offsets.get(), topic.c_str(), partition)->offset = offset;
  auto err = rd_kafka_commit_queue(rk, offsets.get(), answers.get(), nullptr, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return static_cast<RdKafka::ErrorCode>(err);
  std::unique_ptr<rd_kafka_event_t, void (*)(rd_kafka_event_t*)> answer{
    rd_kafka_queue_poll(answers.get(), static_cast<int>(timeout.count())), rd_kafka_event_destroy};
  if (!answer)
    return RdKafka::ERR__TIMED_OUT;
  err = rd_kafka_event_error(answer.get());
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    if (const auto* parts = rd_kafka_event_topic_partition_list(answer.get());
        parts && parts->cnt > 0)
      err = parts->elems[0].err;
  return static_cast<RdKafka::ErrorCode>(err);
}

} // namespace

void kafka_offset_store::save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = rows_.find(id);
  if (i == rows_.end() || consumer_ == nullptr)
    throw_stale(id, "the partition is no longer assigned here");
  if (!abandoned_.empty())
    throw_stale(id, abandoned_);
  if (generation < i->second.generation)
    throw_stale(id,
                fmt::format("incarnation {} is older than {}", generation, i->second.generation));
  if (!cp.position)
    return; // an end marker: a partition has no end
  auto offset = cp.position->base.to_uint64();
  if (!offset || *offset >= static_cast<std::uint64_t>(INT64_MAX))
    throw error{errc::checkpoint_failed,
                fmt::format("kafka offset of shard {} not committed: checkpoint {} is not an "
                            "offset",
                            id, to_string(cp))};
  commit(id, i->second, static_cast<std::int64_t>(*offset) + 1);
}

void kafka_offset_store::commit(const shard_id& id, row& r, std::int64_t offset) {
  const auto err = commit_within(*consumer_, r.topic, r.partition, offset, commit_timeout_);
  switch (err) {
    case RdKafka::ERR_NO_ERROR:
      r.committed = offset;
      last_[id] = offset;
      ++commits_;
      return;
    case RdKafka::ERR_ILLEGAL_GENERATION:
    case RdKafka::ERR_UNKNOWN_MEMBER_ID:
    case RdKafka::ERR_FENCED_INSTANCE_ID:
      throw_stale(id, RdKafka::err2str(err));
    case RdKafka::ERR_REBALANCE_IN_PROGRESS:
      if (r.revoking)
        throw_stale(id, RdKafka::err2str(err));
      break; // retried, below
    case RdKafka::ERR__TIMED_OUT: {
      auto why = fmt::format("kafka offset {} of shard {} not committed: no answer within {} ms "
                             "(is the cluster out of reach?)",
                             offset, id, commit_timeout_.count());
      if (on_unanswered_)
        on_unanswered_(why);
      throw error{errc::checkpoint_failed, std::move(why)};
    }
    default:
      break;
  }
  throw error{errc::checkpoint_failed, fmt::format("kafka offset {} of shard {} not committed: {}",
                                                   offset, id, RdKafka::err2str(err))};
}

} // namespace shardflow
