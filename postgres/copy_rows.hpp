// postgres/copy_rows.hpp - the table's columns (which of a record's fields, under which names)
// and the rows of a batch in COPY's text or binary format.
//
// Pure: no I/O, no libpq. `parse_columns` reads --pg-columns; `copy_rows` formats the records of one
// shard into the bytes COPY ... FROM STDIN takes, one row per record, the columns in the order
// given. A column's role fixes its value and its type:
//
//     stream text, shard text          the stream's name, the shard's id
//     sequence numeric                 the record's sequence number (its exact digits)
//     sub_sequence bigint              the place in its KPL aggregate, else the daemon's
//                                      sub-sequence number, else 0
//     partition_key text, arrival timestamptz (NULL when unknown)
//     data                             jsonb (data_type::jsonb: the payload when it is JSON, else
//                                      NULL), bytea or text (the payload as it is)
//     data_raw bytea                   data_type::jsonb only: the payload when it is not JSON
//
// Binary rows start with no header and end with no trailer: a COPY of several batches sends
// `copy_header` once, the batches, then `copy_trailer` (both empty for text). A `copy_rows` is made
// per shard and used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow::postgres {

/// What a column holds; see the file comment.
enum class column_role : std::uint8_t {
  stream,
  shard,
  sequence,
  sub_sequence,
  partition_key,
  arrival,
  data,
  data_raw,
};

/// Returns the role's name ("stream", ..., "data_raw"), also its column's default name.
const char* to_string(column_role role) noexcept;

/// A column of the target table: what it holds and its name there.
struct column {
  column_role role;
  std::string name;
};

/// What type the `data` column has.
enum class data_type : std::uint8_t {
  /// jsonb for JSON payloads; the others go to `data_raw` (bytea).
  jsonb,
  /// bytea: every payload as its bytes.
  bytea,
  /// text: every payload as text (the server refuses one that is not valid in its encoding).
  text,
};

/// Returns "jsonb", "bytea" or "text".
const char* to_string(data_type type) noexcept;

/// How COPY reads the rows.
enum class copy_format : std::uint8_t { text, binary };

/// Returns "text" or "binary".
const char* to_string(copy_format format) noexcept;

/// Returns the eight columns, in the order of column_role, named after their roles; with `data`
/// bytea or text (every payload goes to data) the seven without data_raw.
std::vector<column> default_columns(data_type data = data_type::jsonb);

/// The default of --pg-columns: every role, comma-separated.
std::string default_columns_text();

/// Parses a comma-separated list of ROLE or ROLE=NAME (NAME: letters, digits, '_').
/// @throws shardflow::error (errc::bad_input) naming an unknown role, a bad name, a role or name
///         given twice, or an empty list.
std::vector<column> parse_columns(std::string_view text);

/// Returns the SQL type a column of `role` has with `data` (e.g. "numeric", "jsonb").
const char* sql_type(column_role role, data_type data) noexcept;

/// Returns "name1, name2, ..." for the columns.
std::string column_list(const std::vector<column>& columns);

/// Returns what COPY needs before the rows of a statement ("" for text).
const std::string& copy_header(copy_format format);

/// Returns what COPY needs after the rows of a statement ("" for text).
const std::string& copy_trailer(copy_format format);

/// Formats the records of one shard as COPY rows.
class copy_rows {
public:
  copy_rows(std::vector<column> columns, data_type data, copy_format format, std::string stream,
            std::string shard);

  /// Appends the row of record `x` to `out`.
  void append(std::string& out, const stream_record& x) const;

private:
  void append_text(std::string& out, const stream_record& x) const;
  void append_binary(std::string& out, const stream_record& x) const;

  std::vector<column> columns_;
  data_type data_;
  copy_format format_;
  std::string stream_;
  std::string shard_;
  std::string stream_text_; // escaped for the text format
  std::string shard_text_;
};

/// Appends `text` to `out` escaped for COPY's text format (backslash, tab, newline, CR).
void append_copy_text(std::string& out, std::string_view text);

/// Returns whether `data` is JSON that jsonb accepts (valid UTF-8, no \u0000).
bool is_jsonb(const std::string& data);

/// Appends the binary numeric of the decimal digits `digits` (leading zeros allowed) to `out`.
void append_binary_numeric(std::string& out, std::string_view digits);

} // namespace shardflow::postgres
