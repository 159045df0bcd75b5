#include "flushers/error.hpp"

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
  }
  return "unknown";
}

} // namespace shardflow
