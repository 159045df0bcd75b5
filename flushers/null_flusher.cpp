#include <shardflow/flushers/null_flusher.hpp>

#include <algorithm>
#include <utility>

namespace shardflow {

null_flusher::null_flusher(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
  // No reserve here: an idle shard should not hold a batch's worth of memory.
}

add_result null_flusher::add(const stream_record&, flush_token token) {
  if (pending_.size() >= capacity_)
    return add_result::full;
  pending_.push_back(token);
  return add_result::added;
}

std::size_t null_flusher::add_run(const stream_record*, std::size_t n, flush_token first,
                                  add_result& stop) {
  const auto old = pending_.size();
  const auto k = std::min(n, capacity_ - std::min(old, capacity_));
  pending_.resize(old + k);
  flush_token* tokens = pending_.data() + old;
  for (std::size_t i = 0; i < k; ++i) // a plain loop: vectorised
    tokens[i] = first + i;
  if (k < n)
    stop = add_result::full;
  return k;
}

std::vector<flush_token> null_flusher::flush(flush_mode) {
  std::vector<flush_token> result(pending_.begin(), pending_.end());
  pending_.clear();
  return result;
}

std::vector<flush_token> null_flusher::heartbeat() {
  return {};
}

flusher_factory null_flusher::factory(std::size_t capacity) {
  return [capacity](const shard_id&) { return std::make_unique<null_flusher>(capacity); };
}

} // namespace shardflow
