// flushers/null_flusher.hpp - a flusher that keeps nothing: the reference implementation and the
// benchmark baseline.
//
// It accepts up to `capacity` records, answers `full` beyond that, and on every flush (partial or full)
// returns every pending token, as if the batch had been written somewhere durable in no time. Its
// heartbeat returns nothing. Use it to measure the runtime without a sink, or as the smallest example
// of the contract in core/flusher.hpp.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// Accepts up to `capacity` records and makes them "durable" on every flush.
class null_flusher final : public flusher {
public:
  /// Creates a flusher whose batch holds at most `capacity` records (at least 1).
  explicit null_flusher(std::size_t capacity);

  add_result add(const stream_record& x, flush_token token) override;

  /// Takes as many records of the run as fit at once (their tokens appended), then `full`.
  std::size_t add_run(const stream_record* xs, std::size_t n, flush_token first,
                      add_result& stop) override;

  std::vector<flush_token> flush(flush_mode mode) override;

  std::vector<flush_token> heartbeat() override;

  /// Returns how many records are in the current batch.
  std::size_t pending() const noexcept {
    return pending_.size();
  }

  /// Returns a factory that makes a `null_flusher` of `capacity` for every shard.
  static flusher_factory factory(std::size_t capacity);

private:
  // Tokens are written once: a run's are not zeroed first (its default construction does nothing).
  template <class T>
  struct uninitialized : std::allocator<T> {
    template <class U>
    struct rebind {
      using other = uninitialized<U>;
    };
    template <class U>
    void construct(U*) noexcept {
      // nop
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  };

  std::size_t capacity_;
  std::vector<flush_token, uninitialized<flush_token>> pending_;
};

} // namespace shardflow
