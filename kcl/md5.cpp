#include <shardflow/kcl/md5.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include <openssl/evp.h>

namespace shardflow::md5 {

namespace {

// OpenSSL's MD5; false when this OpenSSL has none (a FIPS-only configuration).
bool openssl_md5(std::string_view bytes, digest& out) {
  // Fetched once: with EVP_md5(), every EVP_DigestInit_ex looks the algorithm up again (a lock and
  // a search, half the cost of hashing a small aggregate).
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "MD5", nullptr);
  struct context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~context() {
      EVP_MD_CTX_free(ctx);
    }
  };
  thread_local context c;
  unsigned int n = 0;
  return algorithm != nullptr && c.ctx != nullptr && EVP_DigestInit_ex2(c.ctx, algorithm, nullptr)
         && EVP_DigestUpdate(c.ctx, bytes.data(), bytes.size())
         && EVP_DigestFinal_ex(c.ctx, out.data(), &n);
}

} // namespace

digest of(std::string_view bytes) {
  digest out{};
  if (!openssl_md5(bytes, out))
    many(&bytes, 1, &out);
  return out;
}

namespace {

// Eight 32-bit lanes; GCC lowers the operators to AVX2, or to pairs of SSE2 instructions.
using u32x8 = std::uint32_t __attribute__((vector_size(32)));

constexpr int lane_count = 8;
constexpr std::size_t block_size = 64;

// RFC 1321: the sine table, and the rotations of each round.
constexpr std::uint32_t sines[64] = {
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
constexpr int rotations[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
constexpr std::uint32_t initial[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

// Used only on big-endian machines (little-endian ones load whole vectors).
[[maybe_unused]] inline __attribute__((always_inline)) std::uint32_t word(const unsigned char* p) {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

// Returns the words [8 * half, 8 * half + 8) of every lane's block, word by word: m[j] holds word j
// of the eight blocks (an 8x8 transposition of eight loads).
inline __attribute__((always_inline)) void load_words(const unsigned char* const* blocks, int half,
                                                      u32x8* m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  u32x8 r[lane_count];
  for (int l = 0; l < lane_count; ++l)
    std::memcpy(&r[l], blocks[l] + 32 * half, sizeof r[l]);
    // __builtin_shufflevector (clang, GCC 12+; GCC's own __builtin_shuffle is unknown to clang)
    // takes lane numbers 0..15 of (x, y) as constants, hence the lists as macros.
#  define SHARDFLOW_MD5_LO32 0, 8, 1, 9, 4, 12, 5, 13
#  define SHARDFLOW_MD5_HI32 2, 10, 3, 11, 6, 14, 7, 15
#  define SHARDFLOW_MD5_LO64 0, 1, 8, 9, 4, 5, 12, 13
#  define SHARDFLOW_MD5_HI64 2, 3, 10, 11, 6, 7, 14, 15
#  define SHARDFLOW_MD5_LOW_HALVES 0, 1, 2, 3, 8, 9, 10, 11
#  define SHARDFLOW_MD5_HIGH_HALVES 4, 5, 6, 7, 12, 13, 14, 15
#  define SHARDFLOW_MD5_SHUFFLE(x, y, lanes) __builtin_shufflevector(x, y, lanes)
  u32x8 t[lane_count];
  for (int i = 0; i < lane_count; i += 2) {
    t[i] = SHARDFLOW_MD5_SHUFFLE(r[i], r[i + 1], SHARDFLOW_MD5_LO32);
    t[i + 1] = SHARDFLOW_MD5_SHUFFLE(r[i], r[i + 1], SHARDFLOW_MD5_HI32);
  }
  u32x8 u[lane_count];
  for (int i = 0; i < lane_count; i += 4) {
    u[i] = SHARDFLOW_MD5_SHUFFLE(t[i], t[i + 2], SHARDFLOW_MD5_LO64);
    u[i + 1] = SHARDFLOW_MD5_SHUFFLE(t[i], t[i + 2], SHARDFLOW_MD5_HI64);
    u[i + 2] = SHARDFLOW_MD5_SHUFFLE(t[i + 1], t[i + 3], SHARDFLOW_MD5_LO64);
    u[i + 3] = SHARDFLOW_MD5_SHUFFLE(t[i + 1], t[i + 3], SHARDFLOW_MD5_HI64);
  }
  for (int j = 0; j < 4; ++j) {
    m[j] = SHARDFLOW_MD5_SHUFFLE(u[j], u[j + 4], SHARDFLOW_MD5_LOW_HALVES);
    m[j + 4] = SHARDFLOW_MD5_SHUFFLE(u[j], u[j + 4], SHARDFLOW_MD5_HIGH_HALVES);
  }
#  undef SHARDFLOW_MD5_SHUFFLE
#  undef SHARDFLOW_MD5_HIGH_HALVES
#  undef SHARDFLOW_MD5_LOW_HALVES
#  undef SHARDFLOW_MD5_HI64
#  undef SHARDFLOW_MD5_LO64
#  undef SHARDFLOW_MD5_HI32
#  undef SHARDFLOW_MD5_LO32
#else
  for (int j = 0; j < 8; ++j) {
    const int at = 4 * (8 * half + j);
    for (int l = 0; l < lane_count; ++l)
      m[j][l] = word(blocks[l] + at);
  }
#endif
}

// a, b, c, d := d, b + rotl(a + f + sine + word, s), b, c
#define SHARDFLOW_MD5_STEP(f, i, g, s)                                                             \
  do {                                                                                             \
    const u32x8 t = a + (f) + sines[i] + m[g];                                                     \
    a = d;                                                                                         \
    d = c;                                                                                         \
    c = b;                                                                                         \
    b = b + ((t << (s)) | (t >> (32 - (s))));                                                      \
  } while (false)

// One MD5 compression per lane: `state[0..3]` (a, b, c, d) absorb the block `blocks[lane]`.
inline __attribute__((always_inline)) void compress_body(u32x8* state,
                                                         const unsigned char* const* blocks) {
  u32x8 m[16];
  load_words(blocks, 0, m);
  load_words(blocks, 1, m + 8);
  u32x8 a = state[0];
  u32x8 b = state[1];
  u32x8 c = state[2];
  u32x8 d = state[3];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i)
    SHARDFLOW_MD5_STEP(d ^ (b & (c ^ d)), i, i, rotations[0][i % 4]);
#pragma GCC unroll 16
  for (int i = 16; i < 32; ++i)
    SHARDFLOW_MD5_STEP(c ^ (d & (b ^ c)), i, (5 * i + 1) % 16, rotations[1][i % 4]);
#pragma GCC unroll 16
  for (int i = 32; i < 48; ++i)
    SHARDFLOW_MD5_STEP(b ^ c ^ d, i, (3 * i + 5) % 16, rotations[2][i % 4]);
#pragma GCC unroll 16
  for (int i = 48; i < 64; ++i)
    SHARDFLOW_MD5_STEP(c ^ (b | ~d), i, (7 * i) % 16, rotations[3][i % 4]);
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

#undef SHARDFLOW_MD5_STEP

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) void compress_avx2(u32x8* state,
                                                   const unsigned char* const* blocks) {
  compress_body(state, blocks);
}

// The same eight lanes with AVX-512VL: each rotation is one instruction (vprold) instead of two
// shifts and an or, and each round function one ternary-logic instruction.
__attribute__((target("avx2,avx512f,avx512vl"))) void
compress_avx512vl(u32x8* state, const unsigned char* const* blocks) {
  compress_body(state, blocks);
}
#endif

void compress_generic(u32x8* state, const unsigned char* const* blocks) {
  compress_body(state, blocks);
}

using compress_fn = void (*)(u32x8*, const unsigned char* const*);

compress_fn pick_compress() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
    return compress_avx512vl;
  if (__builtin_cpu_supports("avx2"))
    return compress_avx2;
#endif
  return compress_generic;
}

// One lane's message: whole blocks are read in place, the padded end from `tail`.
struct lane {
  std::size_t message = 0;
  std::size_t whole = 0;  // blocks read straight from the message
  std::size_t blocks = 0; // all blocks, the padded end included
  std::size_t next = 0;
  bool busy = false;
  unsigned char tail[2 * block_size];

  // The next block: from the message while whole blocks last, then from the padded tail.
  const unsigned char* block(const std::string_view* in) const noexcept {
    if (next < whole)
      return reinterpret_cast<const unsigned char*>(in[message].data()) + next * block_size;
    return tail + (next - whole) * block_size;
  }
};

// The lanes: eight messages at a time, each lane taking the next message when its own is done.
void many_with(compress_fn compress, const std::string_view* in, std::size_t n, digest* out) {
  static const unsigned char idle[block_size] = {};
  // Longest first, so that the lanes run out of work at about the same time.
  thread_local std::vector<std::size_t> order;
  order.resize(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [in](std::size_t x, std::size_t y) { return in[x].size() > in[y].size(); });
  u32x8 state[4] = {};
  lane ls[lane_count];
  std::size_t taken = 0;
  int busy = 0;
  auto load = [&](int l) {
    auto& x = ls[l];
    x.busy = taken < n;
    if (!x.busy)
      return;
    ++busy;
    x.message = order[taken++];
    const auto bytes = in[x.message];
    x.whole = bytes.size() / block_size;
    const auto rest = bytes.size() % block_size;
    x.blocks = x.whole + (rest + 9 <= block_size ? 1 : 2); // 0x80 and the 8-byte length must fit
    x.next = 0;
    std::memset(x.tail, 0, sizeof x.tail);
    if (rest > 0)
      std::memcpy(x.tail, bytes.data() + x.whole * block_size, rest);
    x.tail[rest] = 0x80;
    const auto bits = static_cast<std::uint64_t>(bytes.size()) * 8;
    unsigned char* length = x.tail + (x.blocks - x.whole) * block_size - 8;
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<unsigned char>(bits >> (8 * i));
    for (int w = 0; w < 4; ++w)
      state[w][l] = initial[w];
  };
  for (int l = 0; l < lane_count; ++l)
    load(l);
  while (busy > 0) {
    const unsigned char* blocks[lane_count];
    for (int l = 0; l < lane_count; ++l)
      blocks[l] = ls[l].busy ? ls[l].block(in) : idle;
    compress(state, blocks);
    for (int l = 0; l < lane_count; ++l) {
      auto& x = ls[l];
      if (!x.busy || ++x.next < x.blocks)
        continue;
      auto& d = out[x.message];
      for (int w = 0; w < 4; ++w)
        for (int i = 0; i < 4; ++i)
          d[static_cast<std::size_t>(4 * w + i)]
            = static_cast<unsigned char>(state[w][l] >> (8 * i));
      --busy;
      load(l);
    }
  }
}

} // namespace

void many(const std::string_view* in, std::size_t n, digest* out) {
  if (n == 1 && openssl_md5(in[0], out[0]))
    return; // one message: seven idle lanes would make this slower than OpenSSL
  static const compress_fn compress = pick_compress();
  many_with(compress, in, n, out);
}

void many_generic(const std::string_view* in, std::size_t n, digest* out) {
  many_with(compress_generic, in, n, out);
}

} // namespace shardflow::md5
