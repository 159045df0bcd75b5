#include <shardflow/postgres/copy_rows.hpp>

#include <algorithm>
#include <ctime>
#include <iterator>
#include <utility>

#include <fmt/format.h>
#include <simdjson.h>

#include <shardflow/core/error.hpp>

namespace shardflow::postgres {

namespace {

constexpr column_role all_roles[] = {
  column_role::stream,        column_role::shard,         column_role::sequence,
  column_role::sub_sequence,  column_role::partition_key, column_role::arrival,
  column_role::data,          column_role::data_raw,
};

std::int64_t sub_sequence_of(const sequence_number& s) {
  return static_cast<std::int64_t>(s.user_total > 0 ? s.user_sub : s.sub.value_or(0));
}

bool is_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void append_arrival_text(std::string& out, std::int64_t ms) {
  auto secs = ms / 1000;
  auto frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 frac);
}

void append_hex_text(std::string& out, const std::string& data) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\\\x"; // bytea's \x, its backslash escaped for COPY
  for (unsigned char c : data) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xF]);
  }
}

template <class Int>
void put_be(std::string& out, Int v) {
  using U = std::make_unsigned_t<Int>;
  const auto u = static_cast<U>(v);
  for (int shift = static_cast<int>(sizeof(U) * 8) - 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xFF));
}

void put_field(std::string& out, std::string_view bytes) {
  put_be<std::int32_t>(out, static_cast<std::int32_t>(bytes.size()));
  out.append(bytes.data(), bytes.size());
}

void put_null(std::string& out) {
  put_be<std::int32_t>(out, -1);
}

// Microseconds from 2000-01-01 (PostgreSQL's epoch) to the Unix epoch.
constexpr std::int64_t unix_to_pg_epoch_us = 946684800LL * 1000000LL;

} // namespace

const char* to_string(column_role role) noexcept {
  switch (role) {
    case column_role::stream:
      return "stream";
    case column_role::shard:
      return "shard";
    case column_role::sequence:
      return "sequence";
    case column_role::sub_sequence:
      return "sub_sequence";
    case column_role::partition_key:
      return "partition_key";
    case column_role::arrival:
      return "arrival";
    case column_role::data:
      return "data";
    default:
      return "data_raw";
  }
}

const char* to_string(data_type type) noexcept {
  switch (type) {
    case data_type::bytea:
      return "bytea";
    case data_type::text:
      return "text";
    default:
      return "jsonb";
  }
}

const char* to_string(copy_format format) noexcept {
  return format == copy_format::binary ? "binary" : "text";
}

std::vector<column> default_columns(data_type data) {
  std::vector<column> out;
  for (auto role : all_roles)
    if (role != column_role::data_raw || data == data_type::jsonb)
      out.push_back({role, to_string(role)});
  return out;
}

std::string default_columns_text() {
  std::string out;
  for (auto role : all_roles)
    out += (out.empty() ? "" : ",") + std::string{to_string(role)};
  return out;
}

std::vector<column> parse_columns(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return error{errc::bad_input,
                 fmt::format("--pg-columns \"{}\": {} (use a comma-separated list of ROLE or "
                             "ROLE=NAME; roles: {})",
                             text, why, default_columns_text())};
  };
  std::vector<column> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    auto end = std::min(text.find(',', at), text.size());
    auto item = text.substr(at, end - at);
    at = end + 1;
    const auto eq = item.find('=');
    const auto role_text = item.substr(0, eq);
    const auto name = eq == std::string_view::npos ? role_text : item.substr(eq + 1);
    auto role = std::find_if(std::begin(all_roles), std::end(all_roles),
                             [&](column_role r) { return role_text == to_string(r); });
    if (role == std::end(all_roles))
      throw bad(fmt::format("no column role \"{}\"", role_text));
    if (!is_name(name))
      throw bad(fmt::format("\"{}\" is not a column name of letters, digits and '_'", name));
    for (auto& c : out)
      if (c.role == *role || c.name == name)
        throw bad(fmt::format("{} given twice", c.role == *role ? role_text : name));
    out.push_back({*role, std::string{name}});
  }
  return out;
}

const char* sql_type(column_role role, data_type data) noexcept {
  switch (role) {
    case column_role::sequence:
      return "numeric";
    case column_role::sub_sequence:
      return "bigint";
    case column_role::arrival:
      return "timestamp with time zone";
    case column_role::data:
      return to_string(data);
    case column_role::data_raw:
      return "bytea";
    default:
      return "text";
  }
}

std::string column_list(const std::vector<column>& columns) {
  std::string out;
  for (auto& c : columns)
    out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

const std::string& copy_header(copy_format format) {
  static const std::string none;
  static const std::string binary{"PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19};
  return format == copy_format::binary ? binary : none;
}

const std::string& copy_trailer(copy_format format) {
  static const std::string none;
  static const std::string binary{"\377\377", 2};
  return format == copy_format::binary ? binary : none;
}

copy_rows::copy_rows(std::vector<column> columns, data_type data, copy_format format,
                     std::string stream, std::string shard)
  : columns_(std::move(columns)),
    data_(data),
    format_(format),
    stream_(std::move(stream)),
    shard_(std::move(shard)) {
  append_copy_text(stream_text_, stream_);
  append_copy_text(shard_text_, shard_);
}

void copy_rows::append(std::string& out, const stream_record& x) const {
  if (format_ == copy_format::binary)
    append_binary(out, x);
  else
    append_text(out, x);
}

void copy_rows::append_text(std::string& out, const stream_record& x) const {
  const bool json = data_ == data_type::jsonb && is_jsonb(x.data);
  bool first = true;
  for (auto& c : columns_) {
    if (!first)
      out.push_back('\t');
    first = false;
    switch (c.role) {
      case column_role::stream:
        out += stream_text_;
        break;
      case column_role::shard:
        out += shard_text_;
        break;
      case column_role::sequence:
        out += x.sequence.base.to_string();
        break;
      case column_role::sub_sequence:
        fmt::format_to(std::back_inserter(out), "{}", sub_sequence_of(x.sequence));
        break;
      case column_role::partition_key:
        append_copy_text(out, x.partition_key);
        break;
      case column_role::arrival:
        if (x.arrival_ms)
          append_arrival_text(out, *x.arrival_ms);
        else
          out += "\\N";
        break;
      case column_role::data:
        if (data_ == data_type::bytea)
          append_hex_text(out, x.data);
        else if (data_ == data_type::text || json)
          append_copy_text(out, x.data);
        else
          out += "\\N";
        break;
      case column_role::data_raw:
        if (json)
          out += "\\N";
        else
          append_hex_text(out, x.data);
        break;
    }
  }
  out.push_back('\n');
}

void copy_rows::append_binary(std::string& out, const stream_record& x) const {
  const bool json = data_ == data_type::jsonb && is_jsonb(x.data);
  put_be<std::int16_t>(out, static_cast<std::int16_t>(columns_.size()));
  for (auto& c : columns_) {
    switch (c.role) {
      case column_role::stream:
        put_field(out, stream_);
        break;
      case column_role::shard:
        put_field(out, shard_);
        break;
      case column_role::sequence: {
        const auto at = out.size();
        put_be<std::int32_t>(out, 0);
        append_binary_numeric(out, x.sequence.base.to_string());
        const auto n = static_cast<std::int32_t>(out.size() - at - 4);
        std::string len;
        put_be<std::int32_t>(len, n);
        std::copy(len.begin(), len.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
        break;
      }
      case column_role::sub_sequence:
        put_be<std::int32_t>(out, 8);
        put_be<std::int64_t>(out, sub_sequence_of(x.sequence));
        break;
      case column_role::partition_key:
        put_field(out, x.partition_key);
        break;
      case column_role::arrival:
        if (x.arrival_ms) {
          put_be<std::int32_t>(out, 8);
          put_be<std::int64_t>(out, *x.arrival_ms * 1000 - unix_to_pg_epoch_us);
        } else {
          put_null(out);
        }
        break;
      case column_role::data:
        if (data_ != data_type::jsonb) {
          put_field(out, x.data);
        } else if (json) {
          put_be<std::int32_t>(out, static_cast<std::int32_t>(x.data.size() + 1));
          out.push_back('\1'); // jsonb's binary format version
          out += x.data;
        } else {
          put_null(out);
        }
        break;
      case column_role::data_raw:
        if (json)
          put_null(out);
        else
          put_field(out, x.data);
        break;
    }
  }
}

void append_copy_text(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
}

bool is_jsonb(const std::string& data) {
  if (data.empty() || data.find("\\u0000") != std::string::npos)
    return false;
  thread_local simdjson::dom::parser parser; // scratch only: nothing is kept between calls
  return parser.parse(data).error() == simdjson::SUCCESS;
}

void append_binary_numeric(std::string& out, std::string_view digits) {
  const auto first = digits.find_first_not_of('0');
  digits = first == std::string_view::npos ? std::string_view{} : digits.substr(first);
  // Base-10000 digits, the first group padded on the left: "123456" -> 12 3456.
  std::vector<std::int16_t> groups;
  const std::size_t lead = digits.size() % 4 == 0 ? 4 : digits.size() % 4;
  for (std::size_t at = 0; at < digits.size();) {
    const std::size_t n = at == 0 ? lead : 4;
    std::int16_t g = 0;
    for (std::size_t i = 0; i < n; ++i)
      g = static_cast<std::int16_t>(g * 10 + (digits[at + i] - '0'));
    groups.push_back(g);
    at += n;
  }
  const auto weight = static_cast<std::int16_t>(groups.size()) - 1;
  while (!groups.empty() && groups.back() == 0)
    groups.pop_back();
  put_be<std::int16_t>(out, static_cast<std::int16_t>(groups.size())); // ndigits
  put_be<std::int16_t>(out, static_cast<std::int16_t>(groups.empty() ? 0 : weight));
  put_be<std::int16_t>(out, 0);                                        // sign: positive
  put_be<std::int16_t>(out, 0);                                        // dscale
  for (auto g : groups)
    put_be<std::int16_t>(out, g);
}

} // namespace shardflow::postgres
