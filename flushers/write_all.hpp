// flushers/write_all.hpp - writing a whole buffer to a file descriptor.
//
// One loop for every writer of files, standard output and sockets: it writes again after a short
// write or an interruption (EINTR), and leaves the reaction to a failure to the caller. Blocking; no
// state.
#pragma once

#include <cstddef>

namespace shardflow {

/// Writes all `size` bytes at `data` to `fd`. Returns false when a write fails (errno says why) or
/// writes nothing.
bool write_all(int fd, const char* data, std::size_t size) noexcept;

} // namespace shardflow
