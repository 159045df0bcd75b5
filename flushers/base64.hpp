// flushers/base64.hpp - standard base64 (RFC 4648, section 4, padded), as the MultiLangDaemon sends
// record data.
//
// Decoding is on the worker's hot path (every record's data): on CPUs with AVX2 it decodes and
// validates 32 characters per step (table lookups by nibble in vector registers), the rest with a
// table per character. Plain functions; no state.
#pragma once

#include <string>
#include <string_view>

namespace shardflow::base64 {

/// Decodes `in` into `out`. Returns false, leaving `out` unspecified, unless `in` is standard
/// padded base64: a multiple of four characters of A-Z a-z 0-9 + /, with '=' only as the last one or
/// two. (Bits past the data in the last character are ignored, as most decoders do.)
bool decode(std::string_view in, std::string& out);

/// Returns the standard padded base64 encoding of `in`.
std::string encode(std::string_view in);

} // namespace shardflow::base64
