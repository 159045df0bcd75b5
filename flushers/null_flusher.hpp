// flushers/null_flusher.hpp - a flusher that keeps nothing: the reference implementation and the
// benchmark baseline.
//
// It accepts up to `capacity` records, answers `full` beyond that, and on every flush (partial or full)
// returns every pending token, as if the batch had been written somewhere durable in no time. Its
// heartbeat returns nothing. Use it to measure the runtime without a sink, or as the smallest example
// of the contract in core/flusher.hpp.
#pragma once

#include <cstddef>
#include <vector>

#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// Accepts up to `capacity` records and makes them "durable" on every flush.
class null_flusher final : public flusher {
public:
  /// Creates a flusher whose batch holds at most `capacity` records (at least 1).
  explicit null_flusher(std::size_t capacity);

  add_result add(const stream_record& x, flush_token token) override;

  std::vector<flush_token> flush(flush_mode mode) override;

  std::vector<flush_token> heartbeat() override;

  /// Returns how many records are in the current batch.
  std::size_t pending() const noexcept {
    return pending_.size();
  }

  /// Returns a factory that makes a `null_flusher` of `capacity` for every shard.
  static flusher_factory factory(std::size_t capacity);

private:
  std::size_t capacity_;
  std::vector<flush_token> pending_;
};

} // namespace shardflow
