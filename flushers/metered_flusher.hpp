// flushers/metered_flusher.hpp - a flusher decorator that counts records, bytes and flush latency.
//
// The counters live in a `flusher_meter` shared with whoever reports them (a progress line, a
// metrics endpoint). The shard's thread writes them, any thread may read them: they are relaxed
// atomics, each exact on its own, not a consistent snapshot together. The meter outlives flusher
// incarnations, so its counts add up across restarts (replayed records count again: that is work
// done).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <shardflow/core/flusher_decorator.hpp>

namespace shardflow {

/// Counters of one shard's flushers.
struct flusher_meter {
  std::atomic<std::uint64_t> records{0};     // records added
  std::atomic<std::uint64_t> bytes{0};       // data bytes of the records added
  std::atomic<std::uint64_t> durable{0};     // tokens returned
  std::atomic<std::uint64_t> flushes{0};     // flush calls
  std::atomic<std::uint64_t> flush_nanos{0}; // time spent in flush, summed
};

/// Wraps a flusher and counts what passes through it into a meter.
class metered_flusher final : public flusher_decorator {
public:
  metered_flusher(std::unique_ptr<flusher> inner, std::shared_ptr<flusher_meter> meter)
    : flusher_decorator(std::move(inner)), meter_(std::move(meter)) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    auto result = inner().add(x, token);
    if (result == add_result::added) {
      meter_->records.fetch_add(1, std::memory_order_relaxed);
      meter_->bytes.fetch_add(x.data.size(), std::memory_order_relaxed);
    }
    return result;
  }

  /// Forwards the run and counts the records the inner flusher added, once per run.
  std::size_t add_run(const stream_record* xs, std::size_t n, flush_token first,
                      add_result& stop) override {
    const auto k = inner().add_run(xs, n, first, stop);
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < k; ++i)
      bytes += xs[i].data.size();
    meter_->records.fetch_add(k, std::memory_order_relaxed);
    meter_->bytes.fetch_add(bytes, std::memory_order_relaxed);
    return k;
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    const auto start = std::chrono::steady_clock::now();
    auto tokens = inner().flush(mode);
    const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    meter_->flushes.fetch_add(1, std::memory_order_relaxed);
    meter_->flush_nanos.fetch_add(static_cast<std::uint64_t>(nanos), std::memory_order_relaxed);
    meter_->durable.fetch_add(tokens.size(), std::memory_order_relaxed);
    return tokens;
  }

  std::vector<flush_token> heartbeat() override {
    auto tokens = inner().heartbeat();
    meter_->durable.fetch_add(tokens.size(), std::memory_order_relaxed);
    return tokens;
  }

  /// Returns a factory whose flushers are made by `inner` and counted into `meter`.
  static flusher_factory wrap(flusher_factory inner, std::shared_ptr<flusher_meter> meter) {
    return [inner = std::move(inner), meter = std::move(meter)](const shard_id& id) {
      return std::make_unique<metered_flusher>(inner(id), meter);
    };
  }

private:
  std::shared_ptr<flusher_meter> meter_;
};

} // namespace shardflow
