// actors/messages.hpp - every atom and message type of shardflow's actors, in one place.
//
// CAF 0.17 atoms carry at most 10 characters. Messages between shardflow actors stay inside one
// process (the engines we read from distribute shards across machines; we never do), so our value
// types are declared local-only with CAF_ALLOW_UNSAFE_MESSAGE_TYPE instead of being serializable.
//
// Protocols, by receiver (-> names the reply; `ok_atom` is CAF's own `caf::ok_atom`, every other
// atom is declared below in namespace shardflow):
//
//   any supervised child  (start_atom)                          -> ok_atom   start handshake
//   supervisor            (start_child_atom, child_spec)        -> actor     add and start a child
//                         (start_child_atom, message args)      -> actor     simple_one_for_one
//                         (terminate_child_atom, string id)     -> ok_atom
//                         (terminate_child_atom, actor)         -> ok_atom   simple_one_for_one
//                         (restart_child_atom, string id)       -> actor
//                         (delete_child_atom, string id)        -> ok_atom
//                         (which_children_atom)                 -> vector<child_info>, newest first
//                         (count_children_atom)                 -> child_counts
//   shard                 (records_atom, record_batch)          from its feeder
//                         (end_atom)                            from its feeder: input ended
//                         (idle_atom)                           from its feeder: the source has
//                                                                  nothing now (credit left); once
//                                                                  until records come again
//                         (stopped_atom)                        from its feeder: the source stopped
//                                                                  before its end (stopped()):
//                                                                  checkpoint, but not the end
//                         (pressure_atom)                       from its feeder: pushes wait for
//                                                                  room in the replay buffer:
//                                                                  flush and checkpoint now
//                         (flush_atom, flush_mode)              -> ok_atom
//                         (shutdown_atom, shutdown_reason)      -> optional<seq number>: the last
//                                                                  acknowledged position, once the
//                                                                  final checkpoint is; then quits
//                         (stats_atom)                          -> shard_stats
//   feeder                (attach_atom, optional<seq number>)   -> ok_atom   from a new incarnation
//                         (demand_atom, uint64 n, uint64 bytes) from the shard: n more records and
//                                                                  `bytes` more payload bytes
//                         (acked_atom, sequence_number)         from the shard: durable checkpoint
//                         (push_atom, record_batch)             -> ok_atom   from a producer
//                                                                  (bad_input: out of order, or
//                                                                  the shard reads its own source)
//                         (readable_atom)                       from its source (any thread):
//                                                                  records again (on_readable)
//                         (end_atom)                            -> ok_atom   from a producer: no more
//                                                                  records; answered once its
//                                                                  waiting pushes are in and the
//                                                                  buffer is closed (restarting:
//                                                                  the feeder stopped first)
//   checkpoint sink       (load_atom, shard_id)                 -> stored_checkpoint (fences older
//                                                                  incarnations)
//                         (save_atom, shard_id, uint64 gen, checkpoint) -> ok_atom
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>

#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/core/record.hpp>

namespace shardflow {

// -- atoms ---------------------------------------------------------------------------------------

using start_atom = caf::atom_constant<caf::atom("start")>;
using start_child_atom = caf::atom_constant<caf::atom("startchild")>;
using terminate_child_atom = caf::atom_constant<caf::atom("termchild")>;
using restart_child_atom = caf::atom_constant<caf::atom("restartch")>;
using delete_child_atom = caf::atom_constant<caf::atom("deletechld")>;
using which_children_atom = caf::atom_constant<caf::atom("whichchild")>;
using count_children_atom = caf::atom_constant<caf::atom("countchld")>;
using restart_tick_atom = caf::atom_constant<caf::atom("restarttk")>;
using start_deadline_atom = caf::atom_constant<caf::atom("startdl")>;
using try_again_atom = caf::atom_constant<caf::atom("tryagain")>;
using shutdown_timeout_atom = caf::atom_constant<caf::atom("shuttmo")>;
using reset_backoff_atom = caf::atom_constant<caf::atom("resetbo")>;
using records_atom = caf::atom_constant<caf::atom("records")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using demand_atom = caf::atom_constant<caf::atom("demand")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using acked_atom = caf::atom_constant<caf::atom("acked")>;
using end_atom = caf::atom_constant<caf::atom("end")>;
using push_atom = caf::atom_constant<caf::atom("push")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using readable_atom = caf::atom_constant<caf::atom("readable")>;
using pressure_atom = caf::atom_constant<caf::atom("pressure")>;

// -- message types -------------------------------------------------------------------------------

/// Counters of one shard incarnation.
struct shard_stats {
  shard_id id;
  /// The incarnation (generation) this shard runs as.
  std::uint64_t generation = 0;
  /// Records received from the feeder.
  std::uint64_t received = 0;
  /// Checkpoints the sink acknowledged.
  std::uint64_t acked = 0;
  /// Checkpoint writes the sink failed (each was retried).
  std::uint64_t sink_failures = 0;
  /// The last checkpoint the sink acknowledged.
  std::optional<sequence_number> last_acked;
  /// The batch processor's counters.
  batch_stats processor;
};

/// Status of a supervised child as `which_children` reports it.
enum class child_status : std::uint8_t {
  /// Alive.
  running,
  /// Waiting to be restarted (backoff, or retrying after a failed start).
  restarting,
  /// Not running and not going to be restarted (OTP's `undefined`).
  undefined,
};

/// Whether a child is a worker or a supervisor.
enum class child_kind : std::uint8_t { worker, supervisor };

/// One row of `which_children`.
struct child_info {
  std::string id;
  caf::actor handle; // invalid unless running
  child_status status = child_status::undefined;
  child_kind kind = child_kind::worker;
};

/// The reply of `count_children`.
struct child_counts {
  std::size_t specs = 0;
  std::size_t active = 0;
  std::size_t supervisors = 0;
  std::size_t workers = 0;
};

// -- errors --------------------------------------------------------------------------------------

/// Returns a CAF error of shardflow's category with code `code` and the message `text`.
caf::error make_error(errc code, std::string text = {});

/// Returns the shardflow code of `err`, or errc::none when `err` is empty or of another category.
errc code_of(const caf::error& err) noexcept;

/// Converts what an actor's handler threw into its exit reason, keeping the text (CAF 0.17 would
/// drop `what()`): a shardflow::error keeps its code, anything else becomes sec::runtime_error.
/// Install it with `self->set_exception_handler(...)`.
caf::error error_from(std::exception_ptr eptr);

/// Returns the message text of `err` (the context of a shardflow error, or CAF's rendering).
std::string text_of(const caf::error& err);

/// Returns `err` as the exception a host throws: a shardflow error keeps its code and text; any
/// other error becomes `fallback` with its text (CAF's rendering).
error error_of(const caf::error& err, errc fallback);

/// Registers shardflow's error category on `cfg`, so CAF renders our errors with their text. Call it
/// on the host's `actor_system_config` before the system starts.
void configure(caf::actor_system_config& cfg);

} // namespace shardflow

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::record_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::sequence_number)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<shardflow::sequence_number>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::checkpoint)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::stored_checkpoint)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::shard_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::flush_mode)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::shutdown_reason)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::child_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<shardflow::child_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardflow::child_counts)
