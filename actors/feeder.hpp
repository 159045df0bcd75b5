// actors/feeder.hpp - the stable front of one shard: feeds records to the current shard incarnation
// under credit and replays from its checkpoint after a crash.
//
// A feeder owns the shard's record source (core/record_source.hpp) and outlives shard crashes: in
// the per-shard group (actors/shard.hpp) it is started before the shard under rest_for_one, so a
// shard crash restarts only the shard, while a feeder crash restarts both. Each shard incarnation
// attaches with its last durable checkpoint; the feeder rewinds the source there and from then on
// sends records only as the shard asks for them:
//
//     shard                           feeder                          producer (push mode)
//       |--(attach, checkpoint)-------->| rewind source                    |
//       |<-------------------ok---------|                                  |
//       |--(demand, n, bytes)---------->| credit += n, bytes               |
//       |<--(records, batch <= credit)--| credit -= batch size  <--(push, batch)--| waits while
//       |--(acked, position)----------->| source.release(position) --ok-->|  over push_limit
//       |<--(end)-----------------------| once the source is at its end    |
//       |<--(stopped)-------------------| ... or stopped before it (stopped())
//
// Backpressure: the shard holds at most its credit of records it has not processed, counted in
// records and in payload bytes (a batch is cut where the byte credit ends, one record at least), and
// a pushing producer waits (its request is answered late) while the replay buffer keeps more than
// `push_limit` records or `push_limit_bytes` bytes, and the wait asks the shard (pressure_atom) to
// flush and checkpoint what it holds now rather than when its checkpoint interval ends. A fast
// source therefore never grows memory without bound. Messages from any actor but the attached
// incarnation are ignored, so a dead incarnation's late demand does nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>

#include <shardflow/core/record_source.hpp>

namespace shardflow {

/// A stop that must take effect at once, before it reaches the shard through its supervisor: set
/// by the runtime (shutdown, stop_shard) and read by the feeder and every shard incarnation.
using halt_flag = std::shared_ptr<std::atomic<bool>>;

/// Tunables of a feeder.
struct feeder_config {
  /// Records per message to the shard at most.
  std::size_t max_batch = 500;
  /// How often to look again when a replayable source has nothing new (0: only on pushes); a source
  /// that wakes its feeder (record_source::on_readable) is read at once besides.
  std::chrono::milliseconds poll_interval{100};
  /// Push mode: producers wait while the replay buffer keeps more records than this ...
  std::size_t push_limit = 100'000;
  /// ... or more payload bytes (keys and data) than this.
  std::size_t push_limit_bytes = std::size_t{256} << 20;
  /// Told when the source throws (its factory, rewind, read or release), before the feeder ends
  /// with that error; may be empty. The runtime uses it to fail a start with the source's error.
  std::function<void(const caf::error&)> on_source_error;
  /// Once true, the feeder reads and sends nothing more (a stop is under way); null: never.
  /// `shard_group` passes the shard's `shard_config::halt`.
  halt_flag halt;
};

/// Spawns a feeder from `self` (a supervisor's start function) over a source made by `make`.
caf::actor spawn_feeder(caf::event_based_actor* self, source_factory make, feeder_config cfg);

} // namespace shardflow
