// kcl/md5.hpp - MD5 digests, one at a time or many side by side.
//
// KPL aggregates end with the MD5 of their protobuf, and a worker checks every one it receives: with
// small aggregates that check is most of the cost of unpacking. MD5 is a chain of dependent steps,
// so one digest keeps a core mostly idle; `many` computes many digests at once, one per 32-bit lane
// of a vector register (sixteen lanes with AVX-512, eight with AVX2, eight in pairs of SSE2 halves
// otherwise), which is several times the throughput of one-at-a-time for the hundreds of aggregates
// of a processRecords batch.
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

/// Stores the MD5 of `in[i]` in `out[i]` for every i < n, in the best lanes this CPU has.
void many(const std::string_view* in, std::size_t n, digest* out);

/// The lanes `many` picks from, best first.
enum class kernel {
  avx512,  ///< sixteen lanes, AVX-512F
  avx2,    ///< eight lanes, AVX2
  generic, ///< eight lanes as the compiler makes them without AVX2 (pairs of SSE2 on x86-64)
};

/// `many` in the lanes of `k`, so that tests cover each kernel this CPU has, not only the best;
/// false (nothing stored) when the CPU lacks it.
bool many_in(kernel k, const std::string_view* in, std::size_t n, digest* out);

} // namespace shardflow::md5
