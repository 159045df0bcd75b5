#include <shardflow/kcl/mld_protocol.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <simdjson.h>

#include <fmt/format.h>

#include <shardflow/flushers/record_line.hpp>
#include <shardflow/kcl/mld_records_avx2.hpp>

namespace shardflow::mld {

namespace {

using simdjson::dom::element;

constexpr std::size_t npos = std::string_view::npos;

// The text of a string field, or the JSON text of any other value; nothing when absent or null.
std::optional<std::string> nullable_string(element obj, const char* key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS || v.is_null())
    return std::nullopt;
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS)
    return std::string{s};
  return simdjson::minify(v); // a number where a string belongs: keep its text
}

// A JSON integer, or a string of decimal digits (Jackson's coercion, and how a number beyond 64 bits
// arrives after `quote_numbers`), when it fits 64 signed bits; nothing otherwise.
std::optional<std::int64_t> integer_of(element v) {
  std::int64_t i = 0;
  if (v.get_int64().get(i) == simdjson::SUCCESS)
    return i;
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS || s.empty())
    return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return i;
}

std::optional<std::int64_t> nullable_int(element obj, const char* key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS || v.is_null())
    return std::nullopt;
  return integer_of(v);
}

// approximateArrivalTimestamp: epoch ms, or (KCL 2.0.x) {"epochSecond":s,"nano":n}; out of range
// (the milliseconds do not fit 64 bits, nano outside 0..999999999) means no arrival time.
std::optional<std::int64_t> arrival_of(element v) {
  std::int64_t ms = 0;
  if (v.get_int64().get(ms) == simdjson::SUCCESS)
    return ms;
  if (!v.is_object())
    return integer_of(v);
  const auto s = nullable_int(v, "epochSecond");
  const auto n = nullable_int(v, "nano");
  if (!s || (n && (*n < 0 || *n > 999'999'999)))
    return std::nullopt;
  if (__builtin_mul_overflow(*s, std::int64_t{1000}, &ms)
      || __builtin_add_overflow(ms, n ? *n / 1'000'000 : 0, &ms))
    return std::nullopt;
  return ms;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Returns the offset just past the string whose opening quote is at `at` (npos if unterminated).
std::size_t skip_string(std::string_view s, std::size_t at) {
  for (std::size_t i = at + 1; i < s.size(); i += s[i] == '\\' ? 2 : 1)
    if (s[i] == '"')
      return i + 1;
  return npos;
}

// What the raw text of a line that is not JSON still tells: the first top-level "action" of an
// object, and where that object ends (npos if it does not).
struct raw_reading {
  std::string action;
  std::size_t end = npos;
};

std::size_t skip_spaces(std::string_view s, std::size_t at) {
  while (at < s.size() && is_space(s[at]))
    ++at;
  return at;
}

// When `: "text"` follows offset `at` (the end of a key), returns the text and where it ends.
std::optional<std::pair<std::string_view, std::size_t>> string_value_after(std::string_view s,
                                                                           std::size_t at) {
  at = skip_spaces(s, at);
  if (at == s.size() || s[at] != ':')
    return std::nullopt;
  at = skip_spaces(s, at + 1);
  if (at == s.size() || s[at] != '"')
    return std::nullopt;
  const auto end = skip_string(s, at);
  if (end == npos)
    return std::nullopt;
  return std::pair{s.substr(at + 1, end - at - 2), end};
}

raw_reading read_raw(std::string_view s) {
  raw_reading r;
  auto i = skip_spaces(s, 0);
  if (i == s.size() || s[i] != '{')
    return r;
  std::size_t depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      const auto end = skip_string(s, i);
      if (end == npos)
        return r;
      const bool action_key = depth == 1 && r.action.empty()
                              && s.substr(i, end - i) == "\"action\"";
      i = end;
      if (action_key)
        if (const auto value = string_value_after(s, end)) {
          r.action = std::string{value->first};
          i = value->second;
        }
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      r.end = i + 1;
      return r;
    }
    ++i;
  }
  return r;
}

// Returns the offset of the first byte of `s` that does not start a valid UTF-8 sequence (overlong
// forms, surrogates and code points past U+10FFFF are invalid), or npos.
std::size_t invalid_utf8_at(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > s.size())
      return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return npos;
}

// Why the parser refused `line`, in the words of the line rather than of the parser's internals.
std::string reason_of(simdjson::error_code err, std::string_view line, const raw_reading& raw) {
  if (err == simdjson::UTF8_ERROR)
    if (const auto at = invalid_utf8_at(line); at != npos)
      return fmt::format("not JSON: invalid UTF-8 at offset {}", at);
  if (err == simdjson::DEPTH_ERROR)
    return fmt::format("not JSON: nested deeper than {} levels", simdjson::DEFAULT_MAX_DEPTH);
  if (raw.end != npos)
    for (auto i = raw.end; i < line.size(); ++i)
      if (!is_space(line[i]))
        return fmt::format("not JSON: text after the JSON object at offset {}", i);
  return fmt::format("not JSON ({})", simdjson::error_message(err));
}

// Copies `line` into `out` with every number outside strings turned into a string of its text, so
// that a number the parser refuses (beyond 64 bits, a double out of range) reaches the field readers,
// which treat it as out of range, instead of costing the whole line.
void quote_numbers(std::string_view line, std::string& out) {
  out.clear();
  out.reserve(line.size() + 64);
  const auto in_number = [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  };
  for (std::size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (c == '"') {
      const auto end = std::min(skip_string(line, i), line.size());
      out.append(line.substr(i, end - i));
      i = end;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      auto end = i;
      while (end < line.size() && in_number(line[end]))
        ++end;
      out += '"';
      out.append(line.substr(i, end - i));
      out += '"';
      i = end;
    } else {
      out += c;
      ++i;
    }
  }
}

const char* type_name(element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    case simdjson::dom::element_type::STRING:
      return "a string";
    case simdjson::dom::element_type::BOOL:
      return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    default:
      return "a number";
  }
}

message::kind kind_of(const std::string& a) {
  using k = message::kind;
  if (a == "initialize")
    return k::initialize;
  if (a == "processRecords")
    return k::process_records;
  if (a == "shutdown")
    return k::shutdown;
  if (a == "shutdownRequested")
    return k::shutdown_requested;
  if (a == "leaseLost")
    return k::lease_lost;
  if (a == "shardEnded")
    return k::shard_ended;
  if (a == "checkpoint")
    return k::checkpoint;
  return k::other;
}

// Reads one record of a processRecords message in one pass over its fields (looking each key up
// would scan them again and again).
void read_record(element r, wire_record& w) {
  simdjson::dom::object fields;
  if (r.get_object().get(fields) != simdjson::SUCCESS) {
    w.problem = "the record is not a JSON object";
    w.raw = simdjson::minify(r);
    return;
  }
  w.data_null = true;
  bool has_sequence = false;
  for (auto field : fields) {
    const auto key = field.key;
    std::string_view text;
    // The keys the daemon sends differ in length: one comparison of lengths picks the candidate.
    const auto is = [&key](std::string_view name) {
      return key.size() == name.size() && std::memcmp(key.data(), name.data(), name.size()) == 0;
    };
    if (is("data")) {
      w.data_null = field.value.get_string().get(text) != simdjson::SUCCESS;
      w.data_base64 = text;
    } else if (is("partitionKey")) {
      if (field.value.get_string().get(text) == simdjson::SUCCESS)
        w.partition_key = text;
    } else if (is("sequenceNumber")) {
      has_sequence = field.value.get_string().get(text) == simdjson::SUCCESS;
      w.sequence_number = text;
    } else if (is("subSequenceNumber")) {
      if (field.value.is_null())
        continue;
      if (const auto sub = integer_of(field.value); sub && *sub >= 0)
        w.sub_sequence_number = static_cast<std::uint64_t>(*sub);
      else
        w.problem = "its subSequenceNumber is not an integer from 0 to 2^63-1";
    } else if (is("approximateArrivalTimestamp")) {
      if (!field.value.is_null())
        w.arrival_ms = arrival_of(field.value);
    }
  }
  if (!has_sequence)
    w.problem = "it has no sequenceNumber string";
  if (!w.problem.empty())
    w.raw = simdjson::minify(r);
}

#if SHARDFLOW_MLD_AVX2
bool cpu_runs_fast_path() noexcept {
  // What mld_records_avx2.cpp is compiled for (-mavx2 -mbmi); __builtin_cpu_supports("avx2") also
  // checks that the OS saves the YMM registers.
  static const bool yes = [] {
    __builtin_cpu_init(); // in case a static constructor parses before libgcc's has run
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi");
  }();
  return yes;
}

// Appends a record the fast path read.
void add_fast_record(void* owner, const shardflow_mld_avx2_record* r) {
  auto& w = static_cast<std::vector<wire_record>*>(owner)->emplace_back();
  w.data_null = r->data_null;
  if (!r->data_null)
    w.data_base64 = {r->data, r->data_size};
  if (r->has_partition_key)
    w.partition_key = {r->partition_key, r->partition_key_size};
  w.sequence_number = {r->sequence_number, r->sequence_number_size};
  if (r->has_sub_sequence_number)
    w.sub_sequence_number = r->sub_sequence_number;
  if (r->has_arrival_ms)
    w.arrival_ms = r->arrival_ms;
}
#endif

// How the daemon writes a processRecords line; only such a line is worth the fast path's try.
constexpr std::string_view process_records_head = R"({"action":"processRecords")";

} // namespace

struct message_parser::impl {
  explicit impl(message_parser_config c) : cfg(c) {
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
#if SHARDFLOW_MLD_AVX2
    if (fast.parser != nullptr) {
      fast.line = nullptr;
      (void) shardflow_mld_records_avx2(&fast);
    }
#endif
  }

  // Reads a processRecords line with the fast path; false when it declines (`out` is then as before).
  bool parse_fast(std::string_view line, message& out, bool padded) {
#if SHARDFLOW_MLD_AVX2
    if (!cfg.fast_path || !cpu_runs_fast_path() || line.substr(0, process_records_head.size())
                                                     != process_records_head)
      return false;
    const char* text = line.data();
    std::size_t capacity = line.size() + simdjson::SIMDJSON_PADDING;
    if (!padded) { // a copy with room to read past its end, like the DOM parser's
      if (copy_capacity < capacity) {
        copy_capacity = std::max(capacity, copy_capacity * 2);
        copy.reset(new char[copy_capacity]);
      }
      std::memcpy(copy.get(), line.data(), line.size());
      std::memset(copy.get() + line.size(), 0, simdjson::SIMDJSON_PADDING);
      text = copy.get();
      capacity = copy_capacity;
    }
    fast.line = text;
    fast.size = line.size();
    fast.capacity = capacity;
    fast.add = &add_fast_record;
    fast.owner = &out.records;
    if (shardflow_mld_records_avx2(&fast) != 1) {
      out.records.clear();
      return false;
    }
    ++fast_lines;
    out.action = "processRecords";
    out.what = message::kind::process_records;
    if (fast.has_millis_behind_latest)
      out.millis_behind_latest = fast.millis_behind_latest;
    return true;
#else
    (void) line, (void) out, (void) padded;
    return false;
#endif
  }

  message_parser_config cfg;
  simdjson::dom::parser parser;
  std::string quoted; // a line with its numbers quoted (see quote_numbers)
  std::uint64_t fast_lines = 0;
#if SHARDFLOW_MLD_AVX2
  shardflow_mld_avx2_call fast{};
  std::unique_ptr<char[]> copy; // an unpadded line, padded for the fast path
  std::size_t copy_capacity = 0;
#endif
};

message_parser::message_parser(message_parser_config cfg) : impl_(std::make_unique<impl>(cfg)) {
  // nop
}

message_parser::~message_parser() = default;

bool message_parser::fast_path_available() noexcept {
#if SHARDFLOW_MLD_AVX2
  return cpu_runs_fast_path();
#else
  return false;
#endif
}

std::uint64_t message_parser::fast_lines() const noexcept {
  return impl_->fast_lines;
}

status message_parser::parse(std::string_view line, message& out, bool padded) {
  // The records' vector keeps its capacity: a caller that reuses it parses batch after batch of
  // records without allocating one (10,000 records are 1.4 MB).
  auto records = std::move(out.records);
  records.clear();
  out = message{};
  out.records = std::move(records);
  if (impl_->parse_fast(line, out, padded))
    return {};
  element doc;
  auto err = impl_->parser.parse(line.data(), line.size(), !padded).get(doc);
  if (err == simdjson::NUMBER_ERROR) {
    quote_numbers(line, impl_->quoted);
    if (impl_->parser.parse(impl_->quoted).get(doc) == simdjson::SUCCESS)
      err = simdjson::SUCCESS;
  }
  if (err) {
    const auto raw = read_raw(line);
    out.action = raw.action;
    out.what = kind_of(out.action);
    return fail(reason_of(err, line, raw));
  }
  if (!doc.is_object())
    return fail(fmt::format("not a JSON object ({})", type_name(doc)));
  // A missing or non-string action names nothing to answer: out.action stays empty (ignorable).
  element action;
  std::string_view action_text;
  if (doc["action"].get(action) != simdjson::SUCCESS || action.is_null())
    return fail("no action");
  if (action.get_string().get(action_text) != simdjson::SUCCESS)
    return fail(fmt::format("an action that is not a string ({})", type_name(action)));
  out.action = std::string{action_text};
  out.what = kind_of(out.action);
  using k = message::kind;
  switch (out.what) {
    case k::initialize: {
      out.shard_id = nullable_string(doc, "shardId").value_or("");
      element v;
      out.has_sequence_key = doc["sequenceNumber"].get(v) == simdjson::SUCCESS;
      out.sequence_number = nullable_string(doc, "sequenceNumber");
      if (auto s = nullable_int(doc, "subSequenceNumber"); s && *s >= 0)
        out.sub_sequence_number = static_cast<std::uint64_t>(*s);
      break;
    }
    case k::process_records: {
      out.millis_behind_latest = nullable_int(doc, "millisBehindLatest");
      simdjson::dom::array records;
      if (doc["records"].get(records) != simdjson::SUCCESS)
        return fail("a processRecords message without a records array");
      out.records.reserve(records.size());
      for (element r : records)
        read_record(r, out.records.emplace_back());
      break;
    }
    case k::shutdown:
      out.reason = nullable_string(doc, "reason").value_or("");
      break;
    case k::checkpoint:
      out.error = nullable_string(doc, "error");
      if (out.error && out.error->empty())
        out.error.reset();
      out.sequence_number = nullable_string(doc, "sequenceNumber");
      out.echo_sub = nullable_string(doc, "subSequenceNumber");
      out.echo_checkpoint = nullable_string(doc, "checkpoint");
      break;
    default:
      break;
  }
  return {};
}

std::string status_line(const std::string& action) {
  std::string out = "{\"action\":\"status\",\"responseFor\":";
  append_json_string(out, action);
  out += "}";
  return out;
}

std::string checkpoint_line(bool v2, const std::optional<std::string>& sequence,
                            std::optional<std::uint64_t> sub) {
  std::string out = "{\"action\":\"checkpoint\",";
  std::string seq = "null";
  if (sequence) {
    seq.clear();
    append_json_string(seq, *sequence);
  }
  if (!v2)
    return out + "\"checkpoint\":" + seq + "}";
  out += "\"sequenceNumber\":" + seq + ",\"subSequenceNumber\":";
  out += sequence && sub ? std::to_string(*sub) : std::string{"null"};
  return out + "}";
}

} // namespace shardflow::mld
