#include <shardflow/core/batch_processor.hpp>

#include <exception>
#include <utility>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

// Runs a flusher call and turns whatever it throws into errc::flusher_failed with the text kept.
template <class F>
auto call_flusher(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    throw error{errc::flusher_failed, fmt::format("the flusher failed in {}: {}", what, e.what())};
  } catch (...) {
    throw error{errc::flusher_failed,
                fmt::format("the flusher failed in {}: a non-standard exception", what)};
  }
}

} // namespace

const char* to_string(shutdown_reason reason) noexcept {
  switch (reason) {
    case shutdown_reason::terminate:
      return "terminate";
    case shutdown_reason::zombie:
      return "zombie";
    case shutdown_reason::requested:
      return "requested";
  }
  return "unknown";
}

batch_processor::batch_processor(shard_id id, std::unique_ptr<flusher> f, batch_config cfg,
                                 time_point now)
  : id_(std::move(id)),
    flusher_(std::move(f)),
    cfg_(cfg),
    tracker_(cfg.enable_subsequence_checkpoints),
    last_flush_(now),
    last_checkpoint_(now),
    last_activity_(now) {
  if (!flusher_)
    throw error{errc::flusher_failed,
                fmt::format("shard {}: the flusher factory returned no flusher", id_)};
}

// Every public operation runs through here: a processor that failed once stays failed, and every
// error names the shard.
template <class F>
auto batch_processor::guarded(const char* operation, F&& body) {
  if (!stopped_.empty())
    throw error{errc::processor_stopped,
                fmt::format("shard {}: {} called on a stopped batch processor ({})", id_, operation,
                            stopped_)};
  try {
    return body();
  } catch (const error& e) {
    stopped_ = fmt::format("it failed: {}", e.what());
    throw error{e.code(), fmt::format("shard {}: {}", id_, e.what())};
  }
}

std::optional<checkpoint> batch_processor::process(const record_batch& batch, time_point now) {
  return guarded("process", [&] {
    last_activity_ = now;
    idle_ = idle_ && batch.empty();
    tracker_.hold(batch);
    // The flusher takes runs of records (one call per run, not per record); the record that ends
    // a run (ignored, or full: flush and offer it again) is issued on its own.
    const stream_record* xs = batch.begin();
    const std::size_t n = batch.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto stop = add_result::added;
      const auto first = tracker_.next_token();
      const auto k = call_flusher(
        "add", [&] { return flusher_->add_run(xs + i, n - i, first, stop); });
      if (k > n - i || (k < n - i && stop == add_result::added))
        throw error{errc::flusher_failed,
                    fmt::format("the flusher's add_run took {} of {} records and answered {} "
                                "for the next",
                                k, n - i, stop == add_result::added ? "added" : "nothing")};
      tracker_.issue_added(k);
      i += k;
      if (i == n)
        break;
      auto result = stop;
      if (result == add_result::full)
        result = add_after_full(xs[i], first + k, now);
      const bool ignored = result == add_result::ignored;
      tracker_.issue(xs[i].sequence, ignored);
      stats_.ignored += ignored ? 1 : 0;
    }
    stats_.records += n;
    if (tracker_.outstanding() > 0 && now - last_flush_ >= cfg_.flush_interval)
      flush_now(flush_mode::partial, now);
    return checkpoint_if_due(now, false);
  });
}

std::optional<checkpoint> batch_processor::heartbeat(time_point now) {
  return guarded("heartbeat", [&] {
    auto tokens = call_flusher("heartbeat", [this] { return flusher_->heartbeat(); });
    if (!tokens.empty()) {
      note_durable(tokens, now);
      ++stats_.heartbeat_flushes;
      last_flush_ = now;
    }
    if (tracker_.outstanding() > 0 && now - last_flush_ >= cfg_.flush_interval)
      flush_now(flush_mode::partial, now);
    return checkpoint_if_due(now, false);
  });
}

std::optional<batch_processor::time_point> batch_processor::next_due() {
  if (!stopped_.empty())
    return std::nullopt;
  std::optional<time_point> due;
  if (tracker_.outstanding() > 0)
    due = last_flush_ + cfg_.flush_interval;
  if (tracker_.can_advance()) {
    const auto t = last_checkpoint_ + cfg_.checkpoint_interval;
    if (!due || t < *due)
      due = t;
  }
  return due;
}

std::optional<checkpoint> batch_processor::tick(time_point now) {
  return guarded("tick", [&] {
    if (tracker_.outstanding() > 0 && now - last_flush_ >= cfg_.flush_interval)
      flush_now(flush_mode::partial, now);
    return checkpoint_if_due(now, false);
  });
}

std::optional<checkpoint> batch_processor::flush(flush_mode mode, time_point now) {
  return guarded("flush", [&] {
    flush_now(mode, now);
    return checkpoint_if_due(now, false);
  });
}

std::optional<checkpoint> batch_processor::checkpoint_now(time_point now) {
  return guarded("checkpoint_now", [&] {
    if (tracker_.outstanding() > 0)
      flush_now(flush_mode::partial, now);
    return checkpoint_if_due(now, true);
  });
}

std::optional<checkpoint> batch_processor::shutdown(shutdown_reason reason, time_point now) {
  auto result = guarded("shutdown", [&]() -> std::optional<checkpoint> {
    switch (reason) {
      case shutdown_reason::zombie:
        return std::nullopt;
      case shutdown_reason::requested:
        flush_now(flush_mode::full, now);
        return checkpoint_if_due(now, true);
      case shutdown_reason::terminate:
        flush_now(flush_mode::full, now);
        if (auto cp = checkpoint_if_due(now, true))
          return cp;
        return checkpoint{};
    }
    return std::nullopt;
  });
  stopped_ = fmt::format("it was shut down with reason {}", to_string(reason));
  return result;
}

void batch_processor::idle(time_point now) noexcept {
  if (!idle_ && tracker_.outstanding() == 0)
    last_activity_ = now; // caught up with nothing held: the wait starts now
  idle_ = true;
}

bool batch_processor::watchdog_expired(time_point now) const noexcept {
  if (cfg_.watchdog_timeout.count() <= 0 || (idle_ && tracker_.outstanding() == 0))
    return false; // disabled, or waiting for input with nothing held: quiet, not stuck
  return now - last_activity_ >= cfg_.watchdog_timeout;
}

batch_stats batch_processor::stats() const {
  auto result = stats_;
  result.outstanding = tracker_.outstanding();
  result.window = tracker_.window();
  result.batches_held = tracker_.batches_held();
  return result;
}

add_result batch_processor::add_after_full(const stream_record& x, flush_token token,
                                           time_point now) {
  for (int attempt = 0;; ++attempt) {
    if (tracker_.outstanding() == 0)
      throw error{errc::record_never_fits,
                  fmt::format("record {} can never fit: the flusher answers full on an empty batch",
                              to_string(x.sequence))};
    // First `full`: a partial flush as erlmld does; if even that left no room, a full flush, after
    // which the batch is empty and a third `full` is the error above.
    flush_now(attempt == 0 ? flush_mode::partial : flush_mode::full, now);
    const auto result = call_flusher("add", [&] { return flusher_->add(x, token); });
    if (result != add_result::full)
      return result;
  }
}

void batch_processor::flush_now(flush_mode mode, time_point now) {
  auto tokens = call_flusher(mode == flush_mode::full ? "flush(full)" : "flush(partial)",
                             [&] { return flusher_->flush(mode); });
  note_durable(tokens, now);
  ++stats_.flushes;
  last_flush_ = now;
  if (mode == flush_mode::full && tracker_.outstanding() != 0)
    throw error{errc::incomplete_full_flush,
                fmt::format("flush(full) left {} records outstanding; a full flush must return "
                            "every token it holds",
                            tracker_.outstanding())};
}

void batch_processor::note_durable(const std::vector<flush_token>& tokens, time_point now) {
  tracker_.complete(tokens.data(), tokens.size());
  stats_.flushed += tokens.size();
  if (!tokens.empty())
    last_activity_ = now; // records made durable: progress
}

std::optional<checkpoint> batch_processor::checkpoint_if_due(time_point now, bool forced) {
  // Asking the tracker first also lets it release the batches the checkpoint has passed.
  if (!tracker_.can_advance())
    return std::nullopt;
  if (!forced && now - last_checkpoint_ < cfg_.checkpoint_interval)
    return std::nullopt;
  checkpoint result{tracker_.take()};
  last_checkpoint_ = now;
  ++stats_.checkpoints;
  stats_.last_checkpoint = result.position;
  return result;
}

} // namespace shardflow
