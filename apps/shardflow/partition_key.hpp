// apps/shardflow/partition_key.hpp - the partition key of an NDJSON line, for `put --key` and
// `kpl-agg --key` alike: one JSON parser (simdjson), so both read `{"user": 17}` and `{"user":17}`
// the same way.
//
// Pure: no I/O. The parser is per thread, so calls from several threads are safe.
#pragma once

#include <string>

#include <shardflow/core/result.hpp>

namespace shardflow::cli {

/// Returns the partition key of the NDJSON line `line`: the value of its top-level field `field`
/// (a string's text, or the minified JSON of any other value), or the whole line when `field` is
/// empty. Fails when the line is not a JSON object, or has no such field (the reason names it).
result<std::string> partition_key_of(const std::string& line, const std::string& field);

} // namespace shardflow::cli
