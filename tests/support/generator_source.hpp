// tests/support/generator_source.hpp - a replayable record source that makes records on demand.
//
// Record i of a shard has sequence number i and data "<shard>:<i>"; rewinding after checkpoint k
// continues at k + 1, as reading a file or a Kafka partition from an offset would.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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

/// Returns a source factory of generator sources for `shard` with `count` records.
inline source_factory generator(std::string shard, std::uint64_t count) {
  return [shard, count] { return std::make_shared<generator_source>(shard, count); };
}

} // namespace shardflow::testing
