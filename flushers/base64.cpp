#include <shardflow/flushers/base64.hpp>

#include <array>
#include <cstdint>
#include <cstring>

#include <openssl/evp.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <immintrin.h>
#  define SHARDFLOW_BASE64_AVX2 1
#endif

namespace shardflow::base64 {

namespace {

constexpr std::uint8_t invalid = 0xFF;

// The value of each character, or `invalid`.
constexpr std::array<std::uint8_t, 256> make_values() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t)
    v = invalid;
  for (int i = 0; i < 26; ++i) {
    t[static_cast<std::size_t>('A' + i)] = static_cast<std::uint8_t>(i);
    t[static_cast<std::size_t>('a' + i)] = static_cast<std::uint8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i)
    t[static_cast<std::size_t>('0' + i)] = static_cast<std::uint8_t>(52 + i);
  t['+'] = 62;
  t['/'] = 63;
  return t;
}

constexpr auto values = make_values();

std::uint8_t value_of(char c) {
  return values[static_cast<unsigned char>(c)];
}

#ifdef SHARDFLOW_BASE64_AVX2
// The vector decoder looks characters up by nibble, in three 16-byte tables derived from `values`:
// - a character c is invalid iff (invalid_by_low[c & 15] & bit_of_high[c >> 4]) != 0: bit h of
//   invalid_by_low[l] says that the character with high nibble h (0-7) and low nibble l is
//   invalid; high nibbles 8-15 are never valid, and use the bit of high nibble 0 (all invalid);
// - its value is c + shift_by_high[c >> 4], but for '/', looked up at index 1 (c >> 4 is 2 for
//   both '+' and '/', whose shifts differ).
struct nibble_tables {
  std::uint8_t invalid_by_low[16] = {};
  std::uint8_t bit_of_high[16] = {};
  std::int8_t shift_by_high[16] = {};
};

constexpr nibble_tables make_nibble_tables() {
  nibble_tables t;
  for (int h = 0; h < 16; ++h)
    t.bit_of_high[h] = static_cast<std::uint8_t>(h < 8 ? 1 << h : 1);
  for (int c = 0; c < 128; ++c) {
    if (values[static_cast<std::size_t>(c)] == invalid)
      t.invalid_by_low[c & 15]
        = static_cast<std::uint8_t>(t.invalid_by_low[c & 15] | 1 << (c >> 4));
    else
      t.shift_by_high[c == '/' ? 1 : c >> 4]
        = static_cast<std::int8_t>(values[static_cast<std::size_t>(c)] - c);
  }
  return t;
}

constexpr nibble_tables tables = make_nibble_tables();

// Proves the tables at compile time: they classify and map all 256 characters as `values` does.
constexpr bool tables_agree() {
  for (int c = 0; c < 256; ++c) {
    const bool valid = (tables.invalid_by_low[c & 15] & tables.bit_of_high[c >> 4]) == 0;
    if (valid != (values[static_cast<std::size_t>(c)] != invalid))
      return false;
    if (valid
        && c + tables.shift_by_high[c == '/' ? 1 : c >> 4] != values[static_cast<std::size_t>(c)])
      return false;
  }
  return true;
}
static_assert(tables_agree(), "the nibble tables disagree with the alphabet");

// The same 16 bytes in both 128-bit halves (the byte shuffle looks up within each half).
inline __attribute__((target("avx2"), always_inline)) __m256i both_halves(const void* table16) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(table16)));
}

// Decodes whole blocks of 32 characters while a block ends at or before `n` (each 32-byte store
// writes 24 bytes of output and 8 beyond them, which the caller provides); returns how many
// characters it decoded, or sets `bad` at a block holding a character outside the alphabet ('='
// included).
__attribute__((target("avx2"))) std::size_t decode_avx2(const char* in, std::size_t n, char* out,
                                                        bool& bad) {
  const __m256i invalid_by_low = both_halves(tables.invalid_by_low);
  const __m256i bit_of_high = both_halves(tables.bit_of_high);
  const __m256i shift_by_high = both_halves(tables.shift_by_high);
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i slash = _mm256_set1_epi8('/');
  // Four 6-bit values a b c d -> the 24-bit a<<18 | b<<12 | c<<6 | d per 32-bit word, then its three
  // bytes high to low, twelve per 128-bit half, and the halves side by side.
  const __m256i pairs = _mm256_set1_epi32(0x01400140);
  const __m256i quads = _mm256_set1_epi32(0x00011000);
  const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2,
                                         1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i halves = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32, out += 24) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(x, 4), nibble);
    const __m256i lo = _mm256_and_si256(x, nibble);
    const __m256i wrong = _mm256_and_si256(_mm256_shuffle_epi8(invalid_by_low, lo),
                                           _mm256_shuffle_epi8(bit_of_high, hi));
    if (!_mm256_testz_si256(wrong, wrong)) {
      bad = true;
      return i;
    }
    const __m256i index = _mm256_add_epi8(hi, _mm256_cmpeq_epi8(x, slash)); // '/': 2 - 1
    const __m256i v = _mm256_add_epi8(x, _mm256_shuffle_epi8(shift_by_high, index));
    const __m256i words = _mm256_madd_epi16(_mm256_maddubs_epi16(v, pairs), quads);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(words, order), halves);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), bytes);
  }
  return i;
}
#endif

} // namespace

bool decode(std::string_view in, std::string& out) {
  out.clear();
  const auto n = in.size();
  if (n % 4 != 0)
    return false;
  if (n == 0)
    return true;
  // 8 bytes of room past the output for the vector stores; cut off at the end.
  out.resize(n / 4 * 3 + 8);
  char* o = out.data();
  std::size_t i = 0;
#ifdef SHARDFLOW_BASE64_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  // Blocks up to the last quartet, which may carry padding: a block ending at n - 4 stores up to
  // 5 bytes past the output.
  if (avx2 && n >= 36) {
    bool bad = false;
    i = decode_avx2(in.data(), n - 4, o, bad);
    if (bad)
      return false;
    o += i / 4 * 3;
  }
  // The whole quartets short of a block before the last quartet (a 100-byte record leaves one,
  // a 40-byte one eight): decoded as a block too, from a copy filled up with 'A'.
  if (avx2 && n - i > 8) {
    const auto m = n - i - 4;
    char block[32];
    char decoded[32];
    std::memcpy(block, in.data() + i, m);
    std::memset(block + m, 'A', sizeof block - m);
    bool bad = false;
    decode_avx2(block, sizeof block, decoded, bad);
    if (bad)
      return false;
    std::memcpy(o, decoded, m / 4 * 3);
    i += m;
    o += m / 4 * 3;
  }
#endif
  // Whole quartets up to the last one, which may carry padding.
  for (; i + 4 < n; i += 4, o += 3) {
    const std::uint32_t a = value_of(in[i]);
    const std::uint32_t b = value_of(in[i + 1]);
    const std::uint32_t c = value_of(in[i + 2]);
    const std::uint32_t d = value_of(in[i + 3]);
    if ((a | b | c | d) == invalid)
      return false;
    const auto w = a << 18 | b << 12 | c << 6 | d;
    o[0] = static_cast<char>(w >> 16);
    o[1] = static_cast<char>(w >> 8);
    o[2] = static_cast<char>(w);
  }
  const std::size_t pad = in[n - 1] != '=' ? 0 : (in[n - 2] != '=' ? 1 : 2);
  const std::uint32_t a = value_of(in[i]);
  const std::uint32_t b = value_of(in[i + 1]);
  const std::uint32_t c = pad == 2 ? 0 : value_of(in[i + 2]);
  const std::uint32_t d = pad >= 1 ? 0 : value_of(in[i + 3]);
  if ((a | b | c | d) == invalid)
    return false;
  const auto w = a << 18 | b << 12 | c << 6 | d;
  o[0] = static_cast<char>(w >> 16);
  if (pad < 2)
    o[1] = static_cast<char>(w >> 8);
  if (pad < 1)
    o[2] = static_cast<char>(w);
  out.resize(n / 4 * 3 - pad);
  return true;
}

std::string encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                 reinterpret_cast<const unsigned char*>(in.data()),
                                 static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

} // namespace shardflow::base64
