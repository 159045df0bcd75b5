// core/record.hpp - the shared vocabulary: shards, records, tokens and checkpoints.
//
// These are the C++ forms of erlmld.hrl. A source builds one `stream_record` per record and hands
// batches of them to a shard; the sequence number lives once per record, inside it. The batch
// processor gives each record it offers a `flush_token` (a counter, 8 bytes) and the flusher hands
// tokens back once their records are durable; a `checkpoint` is what leaves the shard for the
// checkpoint sink.
//
// All types here are plain values: no threads, no locks, safe to copy between actors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <shardflow/core/sequence_number.hpp>

namespace shardflow {

/// Names a shard, e.g. "shardId-000000000001" or "orders-7".
using shard_id = std::string;

/// Identifies one record offered to a flusher. Opaque to flushers: they keep it and hand it back.
using flush_token = std::uint64_t;

/// A record's attributes: key/value pairs in the order the stream gave them (Kafka: its headers;
/// a key may repeat, a value may be empty).
using record_attributes = std::vector<std::pair<std::string, std::string>>;

/// One record of a sharded stream.
struct stream_record {
  /// The key the producer chose; it decided which shard the record went to.
  std::string partition_key;

  /// The payload bytes (not necessarily text).
  std::string data;

  /// The record's position in its shard.
  sequence_number sequence;

  /// When the stream received the record, in milliseconds since the Unix epoch, if known.
  std::optional<std::int64_t> arrival_ms;

  /// How far the record was behind the tip of the stream when it was read, in milliseconds, if known.
  std::optional<std::int64_t> behind_ms;

  /// The record's attributes, shared and immutable (a copy of the record copies a pointer); null,
  /// the default, when it has none, so that sources without attributes pay one empty pointer.
  std::shared_ptr<const record_attributes> attributes;
};

/// Returns the bytes a record's key and data take: what credit and buffer limits count, besides
/// records, so that large records cannot multiply memory.
inline std::size_t payload_bytes(const stream_record& x) noexcept {
  return x.partition_key.size() + x.data.size();
}

/// An immutable batch of records. Copies and slices share one buffer, so a source, a shard and its
/// replay buffer hold the same records without copying them, and the batch processor can refer to a
/// record's sequence number instead of copying it.
class record_batch {
public:
  using value_type = stream_record;
  using const_iterator = const stream_record*;

  /// Creates an empty batch.
  record_batch() = default;

  /// Creates a batch that owns `records`, and counts their payload bytes once, while whoever
  /// built them still has them in cache (credit and buffer limits then need not walk them again).
  explicit record_batch(std::vector<stream_record> records)
    : records_(std::make_shared<const std::vector<stream_record>>(std::move(records))),
      size_(records_->size()), bytes_(count_bytes(begin(), size_)) {
    // nop
  }

  /// Creates a batch that shares `records` (not null), counting their payload bytes as above. A
  /// source that keeps the pointer may refill the vector once it is the only owner again
  /// (`use_count() == 1`): no copy of the batch is left.
  explicit record_batch(std::shared_ptr<const std::vector<stream_record>> records) noexcept
    : records_(std::move(records)), size_(records_->size()), bytes_(count_bytes(begin(), size_)) {
    // nop
  }

  /// Returns the number of records.
  std::size_t size() const noexcept {
    return size_;
  }

  /// Returns whether the batch holds no records.
  bool empty() const noexcept {
    return size_ == 0;
  }

  /// Returns a pointer to the first record.
  const stream_record* begin() const noexcept {
    return records_ ? records_->data() + first_ : nullptr;
  }

  /// Returns a pointer past the last record.
  const stream_record* end() const noexcept {
    return begin() + size_;
  }

  /// Returns record `i`.
  const stream_record& operator[](std::size_t i) const noexcept {
    return begin()[i];
  }

  /// Returns the last record. @pre `!empty()`
  const stream_record& back() const noexcept {
    return begin()[size_ - 1];
  }

  /// Returns the records [first, first + count) of this batch, sharing its buffer.
  record_batch slice(std::size_t first, std::size_t count) const noexcept {
    record_batch result;
    if (first >= size_)
      return result;
    result.records_ = records_;
    result.first_ = first_ + first;
    result.size_ = count < size_ - first ? count : size_ - first;
    result.bytes_ = result.size_ == size_ ? bytes_ : count_bytes(result.begin(), result.size_);
    return result;
  }

  /// Returns the payload bytes (keys and data) of the records, counted when the batch was made.
  std::size_t payload_bytes() const noexcept {
    return bytes_;
  }

private:
  static std::size_t count_bytes(const stream_record* xs, std::size_t n) noexcept {
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i)
      bytes += shardflow::payload_bytes(xs[i]);
    return bytes;
  }

  std::shared_ptr<const std::vector<stream_record>> records_;
  std::size_t first_ = 0;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
};

/// Returns the payload bytes of every record of `batch` (counted when it was made).
inline std::size_t payload_bytes(const record_batch& batch) noexcept {
  return batch.payload_bytes();
}

/// A position at which a shard's progress may be stored.
struct checkpoint {
  /// The sequence number of the last record that is durable together with every record before it.
  /// Empty means "the latest record the source handed over" (erlmld's empty checkpoint, used at
  /// shard end).
  std::optional<sequence_number> position;
};

/// Renders `x` for logs: the position, or "latest" for an empty checkpoint.
inline std::string to_string(const checkpoint& x) {
  return x.position ? to_string(*x.position) : std::string{"latest"};
}

} // namespace shardflow
