#include <shardflow/core/error.hpp>

namespace shardflow {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::none:
      return "none";
    case errc::bad_sequence_number:
      return "bad_sequence_number";
    case errc::flusher_failed:
      return "flusher_failed";
    case errc::unknown_token:
      return "unknown_token";
    case errc::duplicate_token:
      return "duplicate_token";
    case errc::record_never_fits:
      return "record_never_fits";
    case errc::incomplete_full_flush:
      return "incomplete_full_flush";
    case errc::watchdog_timeout:
      return "watchdog_timeout";
    case errc::processor_stopped:
      return "processor_stopped";
    case errc::checkpoint_failed:
      return "checkpoint_failed";
    case errc::stale_generation:
      return "stale_generation";
    case errc::shard_owned:
      return "shard_owned";
    case errc::bad_flags:
      return "bad_flags";
    case errc::bad_child_spec:
      return "bad_child_spec";
    case errc::duplicate_child:
      return "duplicate_child";
    case errc::already_started:
      return "already_started";
    case errc::already_present:
      return "already_present";
    case errc::running:
      return "running";
    case errc::restarting:
      return "restarting";
    case errc::not_found:
      return "not_found";
    case errc::simple_one_for_one:
      return "simple_one_for_one";
    case errc::start_failed:
      return "start_failed";
    case errc::restart_limit_reached:
      return "restart_limit_reached";
    case errc::bad_input:
      return "bad_input";
    case errc::io_failed:
      return "io_failed";
    case errc::unknown_shard:
      return "unknown_shard";
    case errc::shard_ended:
      return "shard_ended";
    case errc::shutting_down:
      return "shutting_down";
    case errc::runtime_ended:
      return "runtime_ended";
    case errc::feeder_stopped:
      return "feeder_stopped";
  }
  return "unknown";
}

const char* to_string(errc_group group) noexcept {
  switch (group) {
    case errc_group::none:
      return "none";
    case errc_group::contract:
      return "contract";
    case errc_group::supervision:
      return "supervision";
    case errc_group::runtime:
      return "runtime";
    case errc_group::store:
      return "store";
    case errc_group::input:
      return "input";
    case errc_group::io:
      return "io";
  }
  return "unknown";
}

} // namespace shardflow
