#include <shardflow/core/checkpoint_store.hpp>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

checkpoint_store::~checkpoint_store() = default;

void apply_checkpoint(stored_checkpoint& row, const shard_id& id, std::uint64_t generation,
                      const checkpoint& cp) {
  if (generation < row.generation)
    throw error{errc::stale_generation,
                fmt::format("shard {}: checkpoint from incarnation {} refused, incarnation {} owns "
                            "the shard now",
                            id, generation, row.generation)};
  if (!cp.position) {
    row.ended = true;
    return;
  }
  row.ended = false; // a shard that moves again has not ended (more records came after its end)
  if (row.position && *cp.position < *row.position)
    throw error{errc::checkpoint_failed,
                fmt::format("shard {}: checkpoint {} would move back from {}", id,
                            to_string(*cp.position), to_string(*row.position))};
  row.position = cp.position;
}

stored_checkpoint memory_checkpoint_store::load(const shard_id& id) {
  auto& row = rows_[id];
  ++row.generation;
  return row;
}

void memory_checkpoint_store::save(const shard_id& id, std::uint64_t generation,
                                   const checkpoint& cp) {
  apply_checkpoint(rows_[id], id, generation, cp);
}

std::optional<stored_checkpoint> memory_checkpoint_store::peek(const shard_id& id) const {
  auto i = rows_.find(id);
  if (i == rows_.end())
    return std::nullopt;
  return i->second;
}

} // namespace shardflow
