// actors/checkpoint_sink.hpp - the actor that serves a checkpoint store to shards.
//
// Protocol (see actors/messages.hpp):
//   (load_atom, shard_id)                       -> stored_checkpoint  (fences older incarnations)
//   (save_atom, shard_id, uint64 gen, checkpoint) -> ok_atom           (once durable)
// A store failure is answered as an error with the store's message and code (errc::stale_generation,
// errc::checkpoint_failed); the sink itself keeps running. Spawn it detached when the store blocks
// (fsync, a database round trip), so that it does not hold up CAF's cooperative workers.
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <shardflow/core/checkpoint_store.hpp>

namespace shardflow {

/// Spawns a checkpoint sink serving `store`; `detached` gives it a thread of its own.
caf::actor spawn_checkpoint_sink(caf::actor_system& sys, std::shared_ptr<checkpoint_store> store,
                                 bool detached = false);

} // namespace shardflow
