// core/flusher_decorator.hpp - a flusher that wraps another and forwards what it does not change.
//
// Decorators add a concern around any flusher (counting, skipping some records, injecting faults)
// without touching it: override the members you change, the rest reach the inner flusher as they are.
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
