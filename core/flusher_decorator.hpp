// core/flusher_decorator.hpp - a flusher that wraps another and forwards what it does not change.
//
// Decorators add a concern around any flusher (counting, skipping some records, injecting faults)
// without touching it: override the members you change, the rest reach the inner flusher as they
// are.
//
// A decorator is a flusher to its shard and must keep the whole contract of core/flusher.hpp: a
// record it answers `ignored` itself never reaches the inner flusher, so no token of it may come
// back; `full` from the inner flusher passes through unchanged (answering `full` for a reason of
// its own with nothing outstanding means the record can never fit); and it returns a token only
// once its record is durable (usually: when the inner flusher returned it). It is called as the
// inner flusher would be (one shard, one call at a time, not always on the same OS thread) and
// destroys the inner flusher with itself. `add_run` is not forwarded: the base class's runs call the
// decorator's own `add` per record, so a decorator that changes `add` stays correct; one that
// forwards runs too (metered_flusher) overrides `add_run` and keeps both in step. Check a decorator
// with flushers/conformance.hpp around a flusher you trust (`null_flusher`).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// Forwards every call to the wrapped flusher; subclasses override what they change.
class flusher_decorator : public flusher {
public:
  explicit flusher_decorator(std::unique_ptr<flusher> inner) : inner_(std::move(inner)) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    return inner_->add(x, token);
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    return inner_->flush(mode);
  }

  std::vector<flush_token> heartbeat() override {
    return inner_->heartbeat();
  }

protected:
  flusher& inner() noexcept {
    return *inner_;
  }

private:
  std::unique_ptr<flusher> inner_;
};

} // namespace shardflow
