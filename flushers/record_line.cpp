#include <shardflow/flushers/record_line.hpp>

#include <charconv>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>
#include <simdjson.h>

#include <shardflow/flushers/base64.hpp>

namespace shardflow {

namespace {

// The bytes a JSON string cannot hold as they are: '"', '\\' and the control characters below 0x20.
bool is_special(unsigned char c) noexcept {
  return c < 0x20 || c == '"' || c == '\\';
}

// Writes the escape of the special byte `c` at `o` (2 or 6 bytes); returns the end.
char* write_escape(char* o, unsigned char c) noexcept {
  static constexpr char hex[] = "0123456789abcdef";
  o[0] = '\\';
  switch (c) {
    case '"':
    case '\\':
      o[1] = static_cast<char>(c);
      return o + 2;
    case '\n':
      o[1] = 'n';
      return o + 2;
    case '\r':
      o[1] = 'r';
      return o + 2;
    case '\t':
      o[1] = 't';
      return o + 2;
    default:
      std::memcpy(o + 1, "u00", 3);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 0xF];
      return o + 6;
  }
}

// 16 bytes at a time (SSE2): a bit per byte of [p, p + 16) that is special.
#if defined(__SSE2__)
constexpr std::size_t block = 16;

unsigned special_mask(const char* p) noexcept {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i slash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), control)));
}
#else
constexpr std::size_t block = 8;

unsigned special_mask(const char* p) noexcept {
  unsigned m = 0;
  for (std::size_t i = 0; i < block; ++i)
    m |= is_special(static_cast<unsigned char>(p[i])) ? 1u << i : 0u;
  return m;
}
#endif

// Returns the first special byte in [p, end), or `end`.
const char* find_special(const char* p, const char* end) noexcept {
  for (; end - p >= static_cast<std::ptrdiff_t>(block); p += block)
    if (const auto m = special_mask(p); m != 0)
      return p + __builtin_ctz(m);
  while (p < end && !is_special(static_cast<unsigned char>(*p)))
    ++p;
  return p;
}

// Returns whether `text` is valid UTF-8: ASCII is checked here a block at a time, simdjson looks at
// the rest (its call costs more than a short ASCII string).
bool valid_utf8(std::string_view text) noexcept {
  const char* p = text.data();
  const char* const end = p + text.size();
#if defined(__SSE2__)
  for (; end - p >= 16; p += 16)
    if (_mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))) != 0)
      return simdjson::validate_utf8(p, static_cast<std::size_t>(end - p));
#endif
  for (; p < end; ++p)
    if (static_cast<unsigned char>(*p) >= 0x80)
      return simdjson::validate_utf8(p, static_cast<std::size_t>(end - p));
  return true;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
  // Written in place, a block at a time: the block is stored whole, then the output pointer moves
  // on to its first special byte, which is escaped, and the next block starts after it. Room for a
  // block and an escape is kept ahead of the output pointer (out grows when escapes eat it).
  const char* p = text.data();
  const char* const end = p + text.size();
  auto at = out.size();
  out.resize(at + text.size() + text.size() / 8 + 2 * block + 8);
  char* o = &out[at];
  char* room = out.data() + out.size();
  *o++ = '"';
  auto grow = [&] {
    at = static_cast<std::size_t>(o - out.data());
    out.resize(at + 2 * static_cast<std::size_t>(end - p) + 2 * block + 8);
    o = &out[at];
    room = out.data() + out.size();
  };
  while (end - p >= static_cast<std::ptrdiff_t>(block)) {
    if (room - o < static_cast<std::ptrdiff_t>(block + 8))
      grow();
    const auto m = special_mask(p);
    std::memcpy(o, p, block);
    if (m == 0) {
      o += block;
      p += block;
      continue;
    }
    const auto i = static_cast<std::size_t>(__builtin_ctz(m));
    o = write_escape(o + i, static_cast<unsigned char>(p[i]));
    p += i + 1;
  }
  for (; p < end; ++p) {
    if (room - o < 8)
      grow();
    const auto c = static_cast<unsigned char>(*p);
    if (is_special(c))
      o = write_escape(o, c);
    else
      *o++ = static_cast<char>(c);
  }
  *o++ = '"';
  out.resize(static_cast<std::size_t>(o - out.data()));
}

namespace {

// Appends `,"<text_key>":"<text>"` when `text` is valid UTF-8, else `,"<b64_key>":"<base64>"`,
// so that every line is valid UTF-8 JSON whatever the bytes (the leading comma when `comma`).
void append_text_or_base64(std::string& out, bool comma, std::string_view text_key,
                           std::string_view b64_key, std::string_view text) {
  // The key with its quotes, colon and the comma before it goes in one append: `,"d":`.
  char head[8];
  std::size_t n = 0;
  if (comma)
    head[n++] = ',';
  head[n++] = '"';
  const bool utf8 = valid_utf8(text);
  const auto key = utf8 ? text_key : b64_key;
  std::memcpy(head + n, key.data(), key.size());
  n += key.size();
  head[n++] = '"';
  head[n++] = ':';
  out.append(head, n);
  if (utf8) {
    append_json_string(out, text);
  } else {
    out.push_back('"');
    out += base64::encode(text);
    out.push_back('"');
  }
}

} // namespace

void append_line(std::string& out, const stream_record& x) {
  out.push_back('{');
  append_text_or_base64(out, false, "k", "kb", x.partition_key);
  if (x.arrival_ms) {
    char t[32] = ",\"t\":";
    const auto r = std::to_chars(t + 5, t + sizeof t, *x.arrival_ms);
    out.append(t, static_cast<std::size_t>(r.ptr - t));
  }
  if (x.attributes && !x.attributes->empty()) {
    out += ",\"h\":[";
    const char* sep = "{";
    for (const auto& [key, value] : *x.attributes) {
      out += sep;
      sep = ",{";
      append_text_or_base64(out, false, "k", "kb", key);
      append_text_or_base64(out, true, "v", "vb", value);
      out.push_back('}');
    }
    out.push_back(']');
  }
  append_text_or_base64(out, true, "d", "b", x.data);
  out.append("}\n", 2);
}

namespace {

// Returns where the first JSON value of `text` ends (just past its closing bracket), or npos when it
// does not close. Only for diagnosing a line the parser refused: it does not validate.
std::size_t end_of_first_value(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Says why simdjson refused `line`.
std::string reason_of(simdjson::error_code err, std::string_view line) {
  if (err == simdjson::UTF8_ERROR)
    return "not valid UTF-8";
  if (err == simdjson::EMPTY)
    return "not a JSON object";
  const auto first = line.find_first_not_of(" \t\r");
  const auto end = first == std::string_view::npos ? first : end_of_first_value(line.substr(first));
  if (end != std::string_view::npos
      && line.find_first_not_of(" \t\r", first + end) != std::string_view::npos)
    return fmt::format("content after the JSON object at byte {} (two records on one line?)",
                       first + end + 1);
  return fmt::format("not valid JSON ({})", simdjson::error_message(err));
}

// Reads the string field `name` of a record into `out`; returns why not, or an empty string.
std::string string_field(simdjson::dom::element v, const char* what, std::string_view& out) {
  if (v.get_string().get(out) != simdjson::SUCCESS)
    return fmt::format("{} is not a string", what);
  return {};
}

// Reads `text_key` (text) or `b64_key` (base64) of a field into `out`, counting them in `seen`;
// returns why not, or "" (also for another key).
std::string text_or_base64(const simdjson::dom::key_value_pair& field, const char* text_key,
                           const char* b64_key, const char* what, int& seen, std::string& out) {
  std::string_view v;
  std::string why;
  if (field.key == text_key) {
    why = string_field(field.value, fmt::format("\"{}\" ({})", text_key, what).c_str(), v);
    out.assign(v);
    ++seen;
  } else if (field.key == b64_key) {
    why = string_field(field.value, fmt::format("\"{}\" ({} in base64)", b64_key, what).c_str(), v);
    if (why.empty() && !base64::decode(v, out))
      why = fmt::format("\"{}\" ({} in base64) is not standard padded base64", b64_key, what);
    ++seen;
  }
  return why;
}

// Reads "h", the record's attributes: an array of {"k"|"kb": key, "v"|"vb": value}.
std::string read_attributes(simdjson::dom::element v, stream_record& out) {
  simdjson::dom::array items;
  if (v.get_array().get(items) != simdjson::SUCCESS)
    return "\"h\" (the attributes) is not an array";
  auto attributes = std::make_shared<record_attributes>();
  for (auto item : items) {
    const auto n = attributes->size() + 1;
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS)
      return fmt::format("attribute {} of \"h\" is not an object", n);
    auto& [key, value] = attributes->emplace_back();
    int keys = 0;
    int values = 0;
    for (auto field : obj) {
      auto why = text_or_base64(field, "k", "kb", "its key", keys, key);
      if (why.empty())
        why = text_or_base64(field, "v", "vb", "its value", values, value);
      if (!why.empty())
        return fmt::format("attribute {} of \"h\": {}", n, why);
    }
    if (keys != 1 || values != 1)
      return fmt::format("attribute {} of \"h\" needs exactly one of \"k\" and \"kb\" (its key) "
                         "and one of \"v\" and \"vb\" (its value)",
                         n);
  }
  if (!attributes->empty())
    out.attributes = std::move(attributes);
  return {};
}

// Reads the fields of a record object into `out`; returns why it is not a record, or "".
std::string read_record(simdjson::dom::object obj, stream_record& out) {
  int key_fields = 0;
  int data_fields = 0;
  out.arrival_ms.reset();
  out.attributes.reset();
  for (auto field : obj) {
    std::string_view v;
    std::string why;
    if (field.key == "k") {
      why = string_field(field.value, "\"k\" (the partition key)", v);
      out.partition_key.assign(v);
      ++key_fields;
    } else if (field.key == "kb") {
      why = string_field(field.value, "\"kb\" (the partition key in base64)", v);
      if (why.empty() && !base64::decode(v, out.partition_key))
        why = "\"kb\" (the partition key in base64) is not standard padded base64";
      ++key_fields;
    } else if (field.key == "d") {
      why = string_field(field.value, "\"d\" (the data)", v);
      out.data.assign(v);
      ++data_fields;
    } else if (field.key == "b") {
      why = string_field(field.value, "\"b\" (the data in base64)", v);
      if (why.empty() && !base64::decode(v, out.data))
        why = "\"b\" (the data in base64) is not standard padded base64";
      ++data_fields;
    } else if (field.key == "t") {
      std::int64_t t = 0;
      if (field.value.get_int64().get(t) != simdjson::SUCCESS)
        why = "\"t\" (the arrival time) is not an integer";
      out.arrival_ms = t;
    } else if (field.key == "h") {
      why = read_attributes(field.value, out);
    } // other fields are validated by the parser and skipped
    if (!why.empty())
      return why;
  }
  if (key_fields == 0)
    return "no \"k\" (partition key)";
  if (key_fields > 1)
    return "more than one of \"k\" and \"kb\" (partition key): a record has exactly one";
  if (data_fields == 0)
    return "no \"d\" or \"b\" (data)";
  if (data_fields > 1)
    return "more than one of \"d\" and \"b\" (data): a record has exactly one";
  return {};
}

// Lines longer than this do not leave their buffers behind in the thread's parser.
constexpr std::size_t keep_parser_bytes = std::size_t{1} << 20;


// The fast path of parse_line, for the lines append_line writes with text key and data:
//
//     {"k":"<string>","t":<integer>,"d":"<string>"}      ("t" optional)
//
// exactly so: no whitespace, these fields in this order, escapes among \" \\ \/ \b \f \n \r \t
// (no \u), an integer of at most 18 digits without leading zeros (not -0), valid UTF-8. Such a line
// is valid JSON and the DOM parser reads the same record from it; returns false for any other line
// (the DOM parser then decides), leaving `out` partly written.

// Returns the byte the escape `\e` stands for, or 0 when the fast path does not take it (\u and
// anything not JSON).
char unescape(char e) noexcept {
  switch (e) {
    case '"':
    case '\\':
    case '/':
      return e;
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return 0;
  }
}

// Reads the string whose text starts at `p` (after its opening quote) into `out`; on success `p`
// is just past its closing quote.
bool read_plain_string(const char*& p, const char* end, std::string& out) {
  // First the extent and the escapes (so that `out` is sized once), then the copy of the runs
  // between the escapes (their places kept while there are few).
  constexpr std::size_t kept = 32;
  const char* at[kept];
  std::size_t escapes = 0;
  const char* s = p;
  for (;;) {
    s = find_special(s, end);
    if (s == end || static_cast<unsigned char>(*s) < 0x20)
      return false;
    if (*s == '"')
      break;
    if (end - s < 2 || unescape(s[1]) == 0)
      return false; // \u and anything else: the DOM parser's
    if (escapes < kept)
      at[escapes] = s;
    ++escapes;
    s += 2;
  }
  out.resize(static_cast<std::size_t>(s - p) - escapes);
  char* o = out.data();
  for (std::size_t e = 0; e < escapes; ++e) {
    const char* q = e < kept ? at[e] : static_cast<const char*>(std::memchr(p, '\\', s - p));
    std::memcpy(o, p, static_cast<std::size_t>(q - p));
    o += q - p;
    *o++ = unescape(q[1]);
    p = q + 2;
  }
  std::memcpy(o, p, static_cast<std::size_t>(s - p));
  p = s + 1; // past the closing quote
  return true;
}

// As read_plain_string, for the last string of the line (the data): the rest of the line bounds
// its length, so it is read in one pass, a block at a time, straight into `out` (stored whole, the
// output pointer then moves to the block's first special byte).
bool read_last_plain_string(const char*& p, const char* end, std::string& out) {
  out.resize(static_cast<std::size_t>(end - p) + block);
  char* const first = out.data();
  char* o = first;
  for (;;) {
    if (end - p >= static_cast<std::ptrdiff_t>(block)) {
      const auto m = special_mask(p);
      std::memcpy(o, p, block);
      if (m == 0) {
        o += block;
        p += block;
        continue;
      }
      const auto i = __builtin_ctz(m);
      o += i;
      p += i;
    } else {
      while (p < end && !is_special(static_cast<unsigned char>(*p)))
        *o++ = *p++;
      if (p == end)
        return false;
    }
    if (*p == '"')
      break;
    if (*p != '\\' || end - p < 2)
      return false; // a control character, or a line that ends in a backslash
    const char c = unescape(p[1]);
    if (c == 0)
      return false;
    *o++ = c;
    p += 2;
  }
  out.resize(static_cast<std::size_t>(o - first));
  ++p; // the closing quote
  return true;
}

bool starts_with(const char* p, const char* end, std::string_view prefix) {
  return static_cast<std::size_t>(end - p) >= prefix.size()
         && std::memcmp(p, prefix.data(), prefix.size()) == 0;
}

// Reads `-?(0|[1-9][0-9]{0,17})` (not -0) at `p`.
bool read_plain_integer(const char*& p, const char* end, std::int64_t& out) {
  const bool negative = p < end && *p == '-';
  const char* digits = p + (negative ? 1 : 0);
  const char* q = digits;
  std::int64_t v = 0;
  while (q < end && *q >= '0' && *q <= '9' && q - digits < 18)
    v = v * 10 + (*q++ - '0');
  const auto n = q - digits;
  if (n == 0 || (q < end && *q >= '0' && *q <= '9') || (n > 1 && *digits == '0')
      || (negative && v == 0))
    return false;
  out = negative ? -v : v;
  p = q;
  return true;
}

bool parse_plain_line(std::string_view line, stream_record& out) {
  const char* p = line.data();
  const char* const end = p + line.size();
  if (!starts_with(p, end, R"({"k":")"))
    return false;
  p += 6;
  if (!read_plain_string(p, end, out.partition_key))
    return false;
  out.arrival_ms.reset();
  if (starts_with(p, end, R"(,"t":)")) {
    p += 5;
    std::int64_t t = 0;
    if (!read_plain_integer(p, end, t))
      return false;
    out.arrival_ms = t;
  }
  if (!starts_with(p, end, R"(,"d":")"))
    return false;
  p += 6;
  if (!read_last_plain_string(p, end, out.data) || end - p != 1 || *p != '}')
    return false;
  if (!valid_utf8(line))
    return false;
  out.attributes.reset();
  return true;
}

} // namespace

status parse_line(std::string_view line, stream_record& out) {
  if (parse_plain_line(line, out))
    return {};
  // The DOM parser validates the whole document (syntax, UTF-8, numbers of unknown fields, nothing
  // after it). It needs readable padding after the text; lines are short, so copy into a buffer.
  thread_local simdjson::dom::parser parser;
  thread_local std::string buf;
  buf.assign(line.data(), line.size());
  buf.append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  std::string why;
  if (auto err = parser.parse(buf.data(), line.size(), false).get(doc))
    why = reason_of(err, line);
  else if (doc.get_object().get(obj) != simdjson::SUCCESS)
    why = "not a JSON object";
  else
    why = read_record(obj, out);
  if (line.size() > keep_parser_bytes) { // a parser keeps the capacity of its longest document
    parser = simdjson::dom::parser{};
    std::string{}.swap(buf);
  }
  if (why.empty())
    return {};
  return fail(std::move(why));
}

} // namespace shardflow
