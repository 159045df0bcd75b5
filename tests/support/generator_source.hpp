// tests/support/generator_source.hpp - replayable record sources for tests and benchmarks.
//
// - generator_source: record i of a shard has sequence number i and data "<shard>:<i>";
// - sized_source: record i has sequence number i, `bytes` bytes of data and a fixed key (for byte
//   credit and memory figures);
// - batches_source: hands out pre-built batches as they are (shared, never copied).
// Each rewinds after checkpoint k to the first record after k, as reading a file or a Kafka
// partition from an offset would, and is at its end once its last record was read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <shardflow/core/record_source.hpp>

namespace shardflow::testing {

class generator_source final : public record_source {
public:
  generator_source(std::string shard, std::uint64_t count)
    : shard_(std::move(shard)), count_(count) {
    // nop
  }

  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = after ? *after->base.to_uint64() + 1 : 0;
    ++rewinds_;
  }

  record_batch read(std::size_t max) override {
    std::vector<stream_record> xs;
    for (; xs.size() < max && pos_ < count_; ++pos_) {
      stream_record x;
      x.partition_key = shard_;
      x.data = shard_ + ":" + std::to_string(pos_);
      x.sequence.base = sequence_base{pos_};
      xs.push_back(std::move(x));
    }
    return record_batch{std::move(xs)};
  }

  bool at_end() const override {
    return pos_ >= count_;
  }

  std::uint64_t rewinds() const noexcept {
    return rewinds_;
  }

private:
  std::string shard_;
  std::uint64_t count_;
  std::uint64_t pos_ = 0;
  std::uint64_t rewinds_ = 0;
};

/// `count` records of `bytes` bytes of data ('x') and partition key `key`; record i has sequence
/// number i.
class sized_source final : public record_source {
public:
  sized_source(std::uint64_t count, std::size_t bytes, std::string key = {})
    : count_(count), bytes_(bytes), key_(std::move(key)) {
    // nop
  }

  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = after ? *after->base.to_uint64() + 1 : 0;
  }

  record_batch read(std::size_t max) override {
    std::vector<stream_record> xs;
    for (; xs.size() < max && pos_ < count_; ++pos_) {
      stream_record x;
      x.partition_key = key_;
      x.data.assign(bytes_, 'x');
      x.sequence.base = sequence_base{pos_};
      xs.push_back(std::move(x));
    }
    return record_batch{std::move(xs)};
  }

  bool at_end() const override {
    return pos_ >= count_;
  }

private:
  std::uint64_t count_;
  std::size_t bytes_;
  std::string key_;
  std::uint64_t pos_ = 0;
};

/// Pre-built batches (records in increasing sequence-number order), one per read, whatever `max`;
/// a rewind to a checkpoint inside a batch hands out that whole batch again.
class batches_source final : public record_source {
public:
  explicit batches_source(std::vector<record_batch> xs) : xs_(std::move(xs)) {
    // nop
  }

  void rewind(const std::optional<sequence_number>& after) override {
    pos_ = 0;
    while (after && pos_ < xs_.size() && xs_[pos_].back().sequence <= *after)
      ++pos_;
  }

  record_batch read(std::size_t) override {
    return pos_ < xs_.size() ? xs_[pos_++] : record_batch{};
  }

  bool at_end() const override {
    return pos_ >= xs_.size();
  }

private:
  std::vector<record_batch> xs_;
  std::size_t pos_ = 0;
};

/// Returns a source factory of generator sources for `shard` with `count` records.
inline source_factory generator(std::string shard, std::uint64_t count) {
  return [shard, count] { return std::make_shared<generator_source>(shard, count); };
}

} // namespace shardflow::testing
