#include <shardflow/core/flusher.hpp>

namespace shardflow {

flusher::~flusher() = default;

const char* to_string(flush_mode mode) noexcept {
  return mode == flush_mode::full ? "full" : "partial";
}

} // namespace shardflow
