// kcl/mld_records_avx2.cpp - a processRecords line in one pass over simdjson's structural index
// (compiled with -mavx2 -mbmi into a self-contained object; see mld_records_avx2.hpp).
//
// Stage 1 of simdjson (the kernel the CPU runs best, dispatched at run time like the DOM parser's)
// validates the UTF-8, closes every string, refuses control characters in strings and indexes every
// operator, every opening quote and every start of a scalar. The walk below is the grammar on top of
// that index, for the shape of a processRecords line only:
//
//   { "key" : value , ... }     value: "text" | digits | true | false | null | [ { ... } , ... ]
//
// Why the index is enough: stage 1 gives anything that is neither space nor inside a string an index
// entry of its own unless it continues a scalar, so between a string's closing quote and the next
// entry there is only space, and a scalar's text is everything from its entry up to the next one
// (less trailing space). A string is plain when no backslash comes before its first quote; then its
// text is the DOM's text. What the walk does not expect declines (see the header).
#include <shardflow/kcl/mld_records_avx2.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include <immintrin.h>

#include <simdjson.h>

namespace {

using namespace std::string_view_literals;

// Declines the line: the caller parses it with the DOM.
struct decline {};

// Returns the offset of the first quote or backslash from `p` (there is one: a string ends in a quote
// inside the line, and up to 31 bytes past it are readable: the line is padded).
std::size_t quote_or_backslash(const char* p) {
  const auto quote = _mm256_set1_epi8('"');
  const auto backslash = _mm256_set1_epi8('\\');
  for (std::size_t at = 0;; at += 32) {
    const auto v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + at));
    const auto mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(
      _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash))));
    if (mask != 0)
      return at + static_cast<std::size_t>(_tzcnt_u32(mask));
  }
}

// The value of eight decimal digits at `p` (a SWAR step: the digits' nibbles multiplied into pairs,
// then quartets, then the eight); declines if one of the bytes is not a digit.
std::uint32_t eight_digits(const char* p) {
  std::uint64_t x;
  std::memcpy(&x, p, 8); // the first digit in the lowest byte
  constexpr std::uint64_t high = 0xF0F0F0F0F0F0F0F0;
  // A digit is 0x30..0x39: its high nibble is 3, and adding 6 does not carry into it.
  if ((x & high) != 0x3030303030303030 || ((x + 0x0606060606060606) & high) != 0x3030303030303030)
    throw decline{};
  x &= 0x0F0F0F0F0F0F0F0F;
  x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FF;          // pairs: d0*10 + d1
  x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFF;        // quartets
  return static_cast<std::uint32_t>(x * 10000 + (x >> 32)); // the low 32 bits hold the eight
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// A cursor over the structural index of one line.
class walk {
public:
  walk(const char* line, std::size_t size, const std::uint32_t* index, std::uint32_t entries)
    : line_(line), size_(size), index_(index), entries_(entries) {
  }

  /// Returns the character of the next entry without taking it.
  char peek() const {
    if (next_ >= entries_)
      throw decline{};
    return line_[index_[next_]];
  }

  /// Takes the next entry, which must be `c`.
  void expect(char c) {
    if (peek() != c)
      throw decline{};
    ++next_;
  }

  /// Takes the next entry, which must be `a` or `b`; returns which.
  char expect_one_of(char a, char b) {
    const char c = peek();
    if (c != a && c != b)
      throw decline{};
    ++next_;
    return c;
  }

  /// Takes a string without escapes; returns its text (a view of the line).
  std::string_view string() {
    if (peek() != '"')
      throw decline{};
    const auto at = index_[next_++];
    const char* text = line_ + at + 1;
    const auto size = quote_or_backslash(text);
    if (text[size] != '"')
      throw decline{};
    return {text, size};
  }

  /// Takes a number that the DOM reads as the same int64: digits without a sign (the DOM reads -0
  /// as a double), fraction or exponent, no leading zero, at most 2^63-1.
  std::int64_t integer() {
    const auto token = scalar();
    if (token.empty() || token.size() > 19 || (token[0] == '0' && token.size() > 1))
      throw decline{};
    std::uint64_t v = 0;
    std::size_t at = 0;
    for (; token.size() - at >= 8; at += 8) // 19 digits fit 64 unsigned bits
      v = v * 100'000'000 + eight_digits(token.data() + at);
    for (; at < token.size(); ++at) {
      const auto d = static_cast<unsigned>(token[at] - '0');
      if (d > 9)
        throw decline{};
      v = v * 10 + d;
    }
    if (v > static_cast<std::uint64_t>(INT64_MAX))
      throw decline{};
    return static_cast<std::int64_t>(v);
  }

  /// Takes a null if the next entry is one; returns whether it did.
  bool null() {
    if (peek() != 'n')
      return false;
    if (scalar() != "null"sv)
      throw decline{};
    return true;
  }

  /// Takes a value nobody needs, which must be a plain string, a plain integer, true, false or null.
  void skip_scalar() {
    const char c = peek();
    if (c == '"') {
      (void) string();
    } else if (c >= '0' && c <= '9') {
      (void) integer();
    } else {
      const auto token = scalar();
      if (token != "true"sv && token != "false"sv && token != "null"sv)
        throw decline{};
    }
  }

  /// Returns whether every entry was taken.
  bool at_end() const noexcept {
    return next_ == entries_;
  }

private:
  // Takes a scalar that is not a string; returns its text.
  std::string_view scalar() {
    const auto at = index_[next_++];
    auto end = next_ < entries_ ? index_[next_] : size_;
    while (end > at && is_space(line_[end - 1]))
      --end;
    return {line_ + at, end - at};
  }

  const char* line_;
  std::size_t size_;
  const std::uint32_t* index_;
  std::uint32_t entries_;
  std::uint32_t next_ = 0;
};

// Whether a key is `name` (a key's text is plain: walk::string declines escapes).
bool is(std::string_view key, std::string_view name) {
  return key.size() == name.size() && std::memcmp(key.data(), name.data(), name.size()) == 0;
}

// The same reading as mld_protocol.cpp's read_record, for the records it has no problem with.
void read_record(walk& w, shardflow_mld_avx2_call& call) {
  w.expect('{');
  shardflow_mld_avx2_record r{};
  r.data_null = true;
  bool has_sequence = false;
  if (w.peek() == '}') // no sequenceNumber
    throw decline{};
  do {
    const auto key = w.string();
    w.expect(':');
    if (is(key, "data"sv)) {
      if (w.null()) {
        r.data_null = true;
        r.data = nullptr;
        r.data_size = 0;
      } else {
        const auto text = w.string();
        r.data_null = false;
        r.data = text.data();
        r.data_size = text.size();
      }
    } else if (is(key, "partitionKey"sv)) {
      if (!w.null()) { // null leaves the key as it was, like the DOM reading
        const auto text = w.string();
        r.partition_key = text.data();
        r.partition_key_size = text.size();
        r.has_partition_key = true;
      }
    } else if (is(key, "sequenceNumber"sv)) {
      const auto text = w.string();
      r.sequence_number = text.data();
      r.sequence_number_size = text.size();
      has_sequence = true;
    } else if (is(key, "subSequenceNumber"sv)) {
      if (!w.null()) {
        r.sub_sequence_number = static_cast<std::uint64_t>(w.integer());
        r.has_sub_sequence_number = true;
      }
    } else if (is(key, "approximateArrivalTimestamp"sv)) {
      if (!w.null()) {
        r.arrival_ms = w.integer();
        r.has_arrival_ms = true;
      }
    } else {
      w.skip_scalar();
    }
  } while (w.expect_one_of(',', '}') == ',');
  if (!has_sequence)
    throw decline{};
  call.add(call.owner, &r);
}

void read_line(walk& w, shardflow_mld_avx2_call& call) {
  w.expect('{');
  bool seen_action = false;
  bool seen_records = false;
  bool seen_millis = false;
  if (w.peek() == '}') // no action
    throw decline{};
  do {
    const auto key = w.string();
    w.expect(':');
    if (is(key, "action"sv)) {
      // The DOM reading takes the first of repeated keys; the walk declines them.
      if (seen_action || w.string() != "processRecords"sv)
        throw decline{};
      seen_action = true;
    } else if (is(key, "records"sv)) {
      if (seen_records)
        throw decline{};
      seen_records = true;
      w.expect('[');
      if (w.peek() == ']')
        w.expect(']');
      else
        do
          read_record(w, call);
        while (w.expect_one_of(',', ']') == ',');
    } else if (is(key, "millisBehindLatest"sv)) {
      if (seen_millis)
        throw decline{};
      seen_millis = true;
      if (!w.null()) {
        call.millis_behind_latest = w.integer();
        call.has_millis_behind_latest = true;
      }
    } else {
      w.skip_scalar();
    }
  } while (w.expect_one_of(',', '}') == ',');
  if (!seen_action || !seen_records || !w.at_end())
    throw decline{};
}

// simdjson's stage 1 for the CPU at hand, kept between lines.
struct indexer {
  std::unique_ptr<simdjson::internal::dom_parser_implementation> stage1;

  void index(const char* line, std::size_t size) {
    if (!stage1
        && simdjson::get_active_implementation()->create_dom_parser_implementation(
             size, simdjson::DEFAULT_MAX_DEPTH, stage1)
             != simdjson::SUCCESS)
      throw decline{};
    if (stage1->capacity() < size && stage1->set_capacity(size) != simdjson::SUCCESS)
      throw decline{};
    if (stage1->stage1(reinterpret_cast<const std::uint8_t*>(line), size,
                       simdjson::stage1_mode::regular)
        != simdjson::SUCCESS)
      throw decline{};
  }
};

} // namespace

extern "C" __attribute__((visibility("default"))) int
shardflow_mld_records_avx2(shardflow_mld_avx2_call* call) {
  auto* ix = static_cast<indexer*>(call->parser);
  if (call->line == nullptr) {
    delete ix;
    call->parser = nullptr;
    return 0;
  }
  call->has_millis_behind_latest = false;
  call->millis_behind_latest = 0;
  try {
    if (call->capacity < call->size + simdjson::SIMDJSON_PADDING)
      return 0;
    if (ix == nullptr)
      call->parser = ix = new indexer{};
    ix->index(call->line, call->size);
    walk w{call->line, call->size, ix->stage1->structural_indexes.get(),
           ix->stage1->n_structural_indexes};
    read_line(w, *call);
    return 1;
  } catch (...) { // a decline, or a failed allocation: the DOM reading decides
    return 0;
  }
}
