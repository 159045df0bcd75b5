// kcl/md5.hpp - MD5 digests, one at a time or many side by side.
//
// KPL aggregates end with the MD5 of their protobuf, and a worker checks every one it receives: with
// small aggregates that check is most of the cost of unpacking. MD5 is a chain of dependent steps,
// so one digest keeps a core mostly idle; `many` computes eight digests at once, one per 32-bit lane
// of a vector register (AVX2 when the CPU has it, two SSE2 halves otherwise), which is several times
// the throughput of one-at-a-time for the hundreds of aggregates of a processRecords batch.
// `of` is OpenSSL's MD5, the reference `many` is tested against.
//
// Plain functions; no state between calls. MD5 is used here to detect corruption, not as security.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace shardflow::md5 {

/// An MD5 digest (RFC 1321), 16 bytes.
using digest = std::array<unsigned char, 16>;

/// Returns the MD5 of `bytes` (OpenSSL).
digest of(std::string_view bytes);

/// Stores the MD5 of `in[i]` in `out[i]` for every i < n, eight digests at a time.
void many(const std::string_view* in, std::size_t n, digest* out);

/// `many` in the generic lanes (what the compiler makes of eight-lane vectors without AVX2: pairs of
/// SSE2 instructions on x86-64) whatever the CPU, so that tests cover them on AVX2 machines too.
void many_generic(const std::string_view* in, std::size_t n, digest* out);

} // namespace shardflow::md5
