#include <shardflow/core/flusher.hpp>

namespace shardflow {

flusher::~flusher() = default;

std::size_t flusher::add_run(const stream_record* xs, std::size_t n, flush_token first,
                             add_result& stop) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto result = add(xs[i], first + i);
    if (result != add_result::added) {
      stop = result;
      return i;
    }
  }
  return n;
}

const char* to_string(flush_mode mode) noexcept {
  return mode == flush_mode::full ? "full" : "partial";
}

} // namespace shardflow
