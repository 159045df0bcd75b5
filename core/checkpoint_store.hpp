// core/checkpoint_store.hpp - durable storage of shard checkpoints, with fencing of old
// incarnations.
//
// A store keeps, per shard, the last acknowledged checkpoint and the newest incarnation number.
// Every shard incarnation starts with `load`, which hands out a new generation; a later `save` from
// an older generation is refused (errc::stale_generation), so a slow, dead incarnation can never
// overwrite the checkpoint of its successor. `save` returns only once the checkpoint is durable.
//
// Plain classes, no CAF: a store is owned by one checkpoint sink actor (actors/checkpoint_sink.hpp)
// and called from it only. A store that blocks on disk or network belongs on a detached sink.
// Failures are thrown as shardflow::error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// What a store holds for one shard.
struct stored_checkpoint {
  /// The last acknowledged checkpoint position; empty when the shard has none yet.
  std::optional<sequence_number> position;
  /// The newest incarnation; `load` returns a fresh one.
  std::uint64_t generation = 0;
  /// Whether the last save was the end marker (an empty checkpoint after `terminate`); a later
  /// position clears it.
  bool ended = false;
};

/// Durable storage of checkpoints; see the file comment.
class checkpoint_store {
public:
  virtual ~checkpoint_store();

  /// Returns the shard's checkpoint under a new generation, fencing every older incarnation.
  /// @throws shardflow::error with errc::checkpoint_failed when the store cannot be read.
  virtual stored_checkpoint load(const shard_id& id) = 0;

  /// Stores `cp` for `id`, written by incarnation `generation`; an empty checkpoint marks the shard
  /// as ended and keeps its position. Returns once the checkpoint is durable.
  /// @throws shardflow::error with errc::stale_generation for an older incarnation, errc::
  ///         checkpoint_failed when the write fails or would move the checkpoint backwards.
  virtual void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) = 0;
};

/// A checkpoint store in memory: for tests, examples, and hosts that keep checkpoints elsewhere.
class memory_checkpoint_store final : public checkpoint_store {
public:
  stored_checkpoint load(const shard_id& id) override;
  void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) override;

  /// Returns what the store holds for `id` (without fencing anything).
  std::optional<stored_checkpoint> peek(const shard_id& id) const;

private:
  std::map<shard_id, stored_checkpoint> rows_;
};

/// Applies the fencing and ordering rules of every store to `row`, then writes `cp` into it.
/// @throws shardflow::error as `checkpoint_store::save` describes.
void apply_checkpoint(stored_checkpoint& row, const shard_id& id, std::uint64_t generation,
                      const checkpoint& cp);

} // namespace shardflow
