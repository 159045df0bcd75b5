#include <shardflow/core/sequence_number.hpp>

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#  include <immintrin.h>
#  define SHARDFLOW_SEQUENCE_SSSE3 1
#endif

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

struct sentinel_name {
  sequence_base::kind k;
  std::string_view name;
};

constexpr sentinel_name sentinel_names[] = {
  {sequence_base::kind::trim_horizon, "TRIM_HORIZON"},
  {sequence_base::kind::latest, "LATEST"},
  {sequence_base::kind::at_timestamp, "AT_TIMESTAMP"},
  {sequence_base::kind::shard_end, "SHARD_END"},
};

// The order of kinds relative to numbers; see compare().
int rank(sequence_base::kind k) noexcept {
  switch (k) {
    case sequence_base::kind::trim_horizon:
      return 0;
    case sequence_base::kind::at_timestamp:
      return 1;
    case sequence_base::kind::number:
      return 2;
    case sequence_base::kind::latest:
      return 3;
    case sequence_base::kind::shard_end:
      return 4;
  }
  return 2;
}

// Shortens untrusted text for an error message.
std::string excerpt(std::string_view text) {
  constexpr std::size_t limit = 40;
  if (text.size() <= limit)
    return std::string{text};
  return fmt::format("{}... ({} characters)", text.substr(0, limit), text.size());
}

#ifdef SHARDFLOW_SEQUENCE_SSSE3
// Checks and packs sixteen characters at a time from the right, as parse's eight-character step
// does: moves `end` (characters left) and `b` (the packed bytes' start) down past each block of
// digits, and stops at a block holding anything else (parse then finds and names it).
__attribute__((target("ssse3"))) void pack_sixteens(const char* text, std::size_t& end,
                                                    std::uint8_t* packed, std::size_t& b) {
  const __m128i zero = _mm_set1_epi8('0');
  const __m128i nine = _mm_set1_epi8(9);
  const __m128i weights = _mm_set1_epi16(0x0110); // 16 for the first digit of a pair, 1 for the second
  for (; end >= 16; end -= 16, b -= 8) {
    const __m128i d
      = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(text + end - 16)), zero);
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(d, nine), nine)) != 0xFFFF)
      return;
    const __m128i pairs = _mm_maddubs_epi16(d, weights); // 16 * first + second, per 16-bit lane
    _mm_storel_epi64(reinterpret_cast<__m128i*>(packed + b - 8), _mm_packus_epi16(pairs, pairs));
  }
}
#endif

} // namespace

sequence_base::sequence_base() noexcept = default;

sequence_base::sequence_base(std::uint64_t value) noexcept {
  std::size_t pos = 0;
  do {
    set_digit(pos++, static_cast<unsigned>(value % 10));
    value /= 10;
  } while (value != 0);
  len_ = static_cast<std::uint8_t>(pos);
}

sequence_base sequence_base::sentinel(kind k) noexcept {
  sequence_base result;
  result.kind_ = k;
  return result;
}

sequence_base sequence_base::parse(std::string_view text) {
  if (text.empty())
    throw error{errc::bad_sequence_number, "invalid sequence number: the text is empty"};
  if (text.front() < '0' || text.front() > '9') {
    for (const auto& entry : sentinel_names)
      if (entry.name == text)
        return sentinel(entry.k);
    throw error{errc::bad_sequence_number,
                fmt::format("invalid sequence number \"{}\": expected decimal digits or one of "
                            "TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END",
                            excerpt(text))};
  }
  if (text.size() > max_digits)
    throw error{errc::bad_sequence_number,
                fmt::format("invalid sequence number \"{}\": {} digits, at most {} are allowed",
                            excerpt(text), text.size(), max_digits)};
  const auto n = text.size();
  // Sixteen (SSSE3) then eight characters at a time from the right: checked (a byte is a digit iff (c - '0') and
  // (c + 0x46) both keep bit 7 clear) and packed into four bytes of two digits each, right-aligned
  // (the last two characters fill the last byte).
  sequence_base result;
  auto b = packed_size;
  auto i = n;
#ifdef SHARDFLOW_SEQUENCE_SSSE3
  static const bool ssse3 = __builtin_cpu_supports("ssse3");
  if (ssse3)
    pack_sixteens(text.data(), i, result.packed_.data(), b);
#endif
  for (; i >= 8; i -= 8, b -= 4) {
    std::uint64_t w;
    std::memcpy(&w, text.data() + i - 8, 8);
    const auto d = w - 0x3030303030303030ull;
    if ((d | (w + 0x4646464646464646ull)) & 0x8080808080808080ull)
      break;
    // Byte 2k of `pairs` is digit 2k << 4 | digit 2k + 1 (little-endian: byte 0 comes first).
    auto pairs = ((d << 4) | (d >> 8)) & 0x00FF00FF00FF00FFull;
    pairs = (pairs | (pairs >> 8)) & 0x0000FFFF0000FFFFull;
    pairs = (pairs | (pairs >> 16)) & 0x00000000FFFFFFFFull;
    const auto packed = static_cast<std::uint32_t>(pairs);
    std::memcpy(result.packed_.data() + b - 4, &packed, 4);
  }
  for (std::size_t k = 0; k < i; ++k) {
    const char c = text[k];
    if (c < '0' || c > '9') {
      for (k = 0; text[k] >= '0' && text[k] <= '9';) // the first one from the left
        ++k;
      throw error{errc::bad_sequence_number,
                  fmt::format("invalid sequence number \"{}\": character {} is '{}', not a digit",
                              excerpt(text), k + 1, text[k])};
    }
  }
  for (; i >= 2; i -= 2)
    result.packed_[--b]
      = static_cast<std::uint8_t>(((text[i - 2] - '0') << 4) | (text[i - 1] - '0'));
  if (i == 1)
    result.packed_[--b] = static_cast<std::uint8_t>(text[0] - '0');
  result.len_ = static_cast<std::uint8_t>(n);
  return result;
}

std::string sequence_base::to_string() const {
  if (!is_number())
    return shardflow::to_string(kind_);
  std::string result(len_, '0');
  for (std::size_t i = 0; i < len_; ++i)
    result[len_ - 1 - i] = static_cast<char>('0' + digit(i));
  return result;
}

std::optional<std::uint64_t> sequence_base::to_uint64() const noexcept {
  if (!is_number())
    return std::nullopt;
  std::uint64_t result = 0;
  for (std::size_t i = len_; i-- > 0;) {
    const auto d = digit(i);
    if (result > (UINT64_MAX - d) / 10)
      return std::nullopt;
    result = result * 10 + d;
  }
  return result;
}

int compare(const sequence_base& x, const sequence_base& y) noexcept {
  if (x.kind_ != y.kind_)
    return rank(x.kind_) < rank(y.kind_) ? -1 : 1;
  if (!x.is_number())
    return 0;
  const int r = std::memcmp(x.packed_.data(), y.packed_.data(), sequence_base::packed_size);
  return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

void sequence_base::set_digit(std::size_t pos, unsigned d) noexcept {
  auto& byte = packed_[packed_size - 1 - pos / 2];
  if (pos % 2 == 0)
    byte = static_cast<std::uint8_t>((byte & 0xF0) | d);
  else
    byte = static_cast<std::uint8_t>((byte & 0x0F) | (d << 4));
}

unsigned sequence_base::digit(std::size_t pos) const noexcept {
  const auto byte = packed_[packed_size - 1 - pos / 2];
  return pos % 2 == 0 ? (byte & 0x0Fu) : (byte >> 4);
}

const char* to_string(sequence_base::kind k) noexcept {
  for (const auto& entry : sentinel_names)
    if (entry.k == k)
      return entry.name.data();
  return "number";
}

int compare(const sequence_number& x, const sequence_number& y) noexcept {
  if (auto r = compare(x.base, y.base); r != 0)
    return r;
  const auto xs = x.sub.value_or(0);
  const auto ys = y.sub.value_or(0);
  if (xs != ys)
    return xs < ys ? -1 : 1;
  if (x.user_sub != y.user_sub)
    return x.user_sub < y.user_sub ? -1 : 1;
  return 0;
}

std::string to_string(const sequence_number& x) {
  auto result = x.base.to_string();
  if (x.sub)
    result += fmt::format("/{}", *x.sub);
  if (x.user_total > 0)
    result += fmt::format("#{}:{}", x.user_sub, x.user_total);
  return result;
}

} // namespace shardflow
