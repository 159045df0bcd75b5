// fuzz/record_line.cpp - parse_line on arbitrary lines, and append_line / parse_line round trips.
//
// Input: a mode byte, then the rest. Mode even: the rest is a line; if parse_line takes it, the line
// append_line writes for the record parses back to the same key, data and time. Mode odd: the rest
// is a record (key up to the first 0 byte, then 8 bytes of time when bit 1 of the mode is set, then
// the data, after two attributes when bit 2 is set: key, value, key, value, each up to a 0 byte);
// append_line must write one valid UTF-8 line (one newline, at the end) that parses back to it,
// whatever the bytes of key, attributes and data (UTF-8 goes in "k", "v" and "d", anything else in
// "kb", "vb" and "b").
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include <shardflow/flushers/record_line.hpp>

namespace {

using shardflow::stream_record;

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n + 1 > s.size())
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    const std::uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// The line append_line writes for `x`, checked to be one line, without its newline.
std::string line_of(const stream_record& x) {
  std::string line;
  append_line(line, x);
  SHARDFLOW_FUZZ_CHECK(!line.empty() && line.back() == '\n');
  line.pop_back();
  SHARDFLOW_FUZZ_CHECK(line.find('\n') == std::string::npos);
  return line;
}

void check_round_trip(const stream_record& x) {
  const auto line = line_of(x);
  SHARDFLOW_FUZZ_CHECK(valid_utf8(line));
  stream_record y;
  const auto parsed = shardflow::parse_line(line, y);
  if (!parsed)
    std::fprintf(stderr, "line %s: %s\n", line.c_str(), parsed.error().c_str());
  SHARDFLOW_FUZZ_CHECK(parsed);
  SHARDFLOW_FUZZ_CHECK(y.partition_key == x.partition_key);
  SHARDFLOW_FUZZ_CHECK(y.data == x.data);
  SHARDFLOW_FUZZ_CHECK(y.arrival_ms == x.arrival_ms);
  const bool none = !x.attributes || x.attributes->empty();
  SHARDFLOW_FUZZ_CHECK(none ? !y.attributes : y.attributes && *y.attributes == *x.attributes);
}

// Takes the bytes of `in` up to its first 0 byte (all of it when there is none) and drops them and
// the 0 byte from `in`.
std::string take_field(std::string_view& in) {
  const auto cut = in.find('\0');
  std::string field{in.substr(0, cut)};
  in = cut == std::string_view::npos ? std::string_view{} : in.substr(cut + 1);
  return field;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const auto mode = data[0];
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  stream_record x;
  if (mode % 2 == 0) {
    if (shardflow::parse_line(in, x))
      check_round_trip(x);
    return 0;
  }
  x.partition_key = take_field(in);
  if ((mode & 4) != 0) {
    auto attributes = std::make_shared<shardflow::record_attributes>();
    for (int i = 0; i < 2; ++i) {
      auto key = take_field(in);
      attributes->emplace_back(std::move(key), take_field(in));
    }
    x.attributes = std::move(attributes);
  }
  if ((mode & 2) != 0 && in.size() >= 8) {
    std::int64_t t = 0;
    std::memcpy(&t, in.data(), 8);
    x.arrival_ms = t;
    in.remove_prefix(8);
  }
  x.data = std::string{in};
  check_round_trip(x);
  return 0;
}
