// flushers/record_line.hpp - a record as one line of NDJSON: the local stream's format, and what the
// file and stdout flushers write, so outputs can be compared with inputs line by line.
//
//     {"k":"<partition key>","t":<arrival ms, optional>,"d":"<data as a JSON string>"}\n
//     {"k":"<partition key>","t":<arrival ms, optional>,"b":"<data in standard base64>"}\n
//     {"k":"...","h":[{"k":"<attribute key>","v":"<its value>"},...],"d":"..."}\n
//
// Data that is valid UTF-8 is written as the JSON string "d" (control characters, quotes and
// backslashes are escaped); any other data (binary Kinesis records) as its standard padded base64 in
// "b", so every line is valid UTF-8 JSON; likewise a partition key that is not UTF-8 (a KPL user
// record's key is any bytes) goes as "kb" instead of "k". A record's attributes (Kafka headers),
// when it has any, go in order as "h", each key as "k" or "kb" and each value as "v" or "vb" by the
// same rule. Parsing validates the whole line (JSON syntax and UTF-8, unknown fields included, nothing
// after the object), accepts the fields in any order, ignores unknown ones, takes exactly one of "k"
// and "kb" and one of "d" and "b" (and per attribute one key and one value), and says what is wrong
// with a line that is not a record.
// Plain functions; parse_line keeps a parser per thread. Lines shaped exactly as append_line writes
// them with text key and data (no whitespace, "k", "t", "d" in that order, no \u escapes) are
// read without it, in one pass; every other line goes to simdjson's DOM parser, which reads the
// same record from a line that both accept (a test compares them).
#pragma once

#include <string>
#include <string_view>

#include <shardflow/core/record.hpp>
#include <shardflow/core/result.hpp>

namespace shardflow {

/// Appends the JSON string literal for `text` (quotes included) to `out`.
void append_json_string(std::string& out, std::string_view text);

/// Appends the line of `x` (newline included) to `out`: its key as "k" and its data as "d" when
/// they are valid UTF-8, else as "kb" and "b" (base64); its attributes, if any, as "h".
void append_line(std::string& out, const stream_record& x);

/// Parses one record line (without its newline) into `out`, leaving its sequence number alone.
/// @returns success, or why the line is not a record.
status parse_line(std::string_view line, stream_record& out);

} // namespace shardflow
