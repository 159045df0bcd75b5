#include "adapters/base64.hpp"

#include <array>
#include <cstdint>

#include <openssl/evp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SHARDFLOW_BASE64_AVX2 1
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
// Decodes whole blocks of 32 characters while at least 48 remain (so that the 32-byte stores, of
// which 24 bytes are output, stay inside the output); returns how many characters it decoded, or
// sets `bad` at a block holding a character outside the alphabet ('=' included).
__attribute__((target("avx2"))) std::size_t decode_avx2(const char* in, std::size_t n, char* out,
                                                        bool& bad) {
  // A character is invalid when (lo_classes[low nibble] & hi_classes[high nibble]) != 0. Classes:
  // 1 = high nibble 0, 1 or 8-F (never valid); 2 = '+' and '/' (0x2B, 0x2F); 4 = digits (0x30-0x39);
  // 8 = 'A'-'O' and 'a'-'o' (not 0x40, 0x60); 16 = 'P'-'Z' and 'p'-'z' (up to 0x5A, 0x7A).
  const __m256i lo_classes = _mm256_setr_epi8(
    1 | 2 | 8, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2 | 4,
    1 | 4 | 16, 1 | 2 | 4 | 16, 1 | 2 | 4 | 16, 1 | 2 | 4 | 16, 1 | 4 | 16,
    1 | 2 | 8, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2, 1 | 2 | 4,
    1 | 4 | 16, 1 | 2 | 4 | 16, 1 | 2 | 4 | 16, 1 | 2 | 4 | 16, 1 | 4 | 16);
  const __m256i hi_classes = _mm256_setr_epi8(1, 1, 2, 4, 8, 16, 8, 16, 1, 1, 1, 1, 1, 1, 1, 1,
                                              1, 1, 2, 4, 8, 16, 8, 16, 1, 1, 1, 1, 1, 1, 1, 1);
  // What to add to a character to get its value, by high nibble; '/' is looked up at index 1.
  const __m256i shifts = _mm256_setr_epi8(0, 63 - '/', 62 - '+', 52 - '0', -'A', -'A', 26 - 'a',
                                          26 - 'a', 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 63 - '/', 62 - '+', 52 - '0', -'A', -'A', 26 - 'a',
                                          26 - 'a', 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i slash = _mm256_set1_epi8('/');
  // Four 6-bit values a b c d -> the 24-bit a<<18 | b<<12 | c<<6 | d per 32-bit word, then its three
  // bytes high to low, twelve per 128-bit half, and the halves side by side.
  const __m256i pairs = _mm256_set1_epi32(0x01400140);
  const __m256i quads = _mm256_set1_epi32(0x00011000);
  const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                         2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i halves = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  std::size_t i = 0;
  for (; i + 48 <= n; i += 32, out += 24) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(x, 4), nibble);
    const __m256i lo = _mm256_and_si256(x, nibble);
    const __m256i wrong = _mm256_and_si256(_mm256_shuffle_epi8(lo_classes, lo),
                                           _mm256_shuffle_epi8(hi_classes, hi));
    if (!_mm256_testz_si256(wrong, wrong)) {
      bad = true;
      return i;
    }
    const __m256i index = _mm256_add_epi8(hi, _mm256_cmpeq_epi8(x, slash)); // '/': 2 - 1
    const __m256i v = _mm256_add_epi8(x, _mm256_shuffle_epi8(shifts, index));
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
  out.resize(n / 4 * 3);
  char* o = out.data();
  std::size_t i = 0;
#ifdef SHARDFLOW_BASE64_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2 && n >= 48) {
    bool bad = false;
    i = decode_avx2(in.data(), n, o, bad);
    if (bad)
      return false;
    o += i / 4 * 3;
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
