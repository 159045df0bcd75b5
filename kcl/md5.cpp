#include <shardflow/kcl/md5.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <utility>
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

// Eight or sixteen 32-bit lanes. GCC lowers the operators of the eight-lane vector to AVX2 (or to
// pairs of SSE2 instructions), those of the sixteen-lane one to AVX-512 in a function built for it.
using u32x8 = std::uint32_t __attribute__((vector_size(32)));
using u32x16 = std::uint32_t __attribute__((vector_size(64)));

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

// The transposition of N rows of N words, in log2(N) steps: step B swaps, in each pair of rows
// (i, i + B) with i & B == 0, the words k & B of row i with the words k - B of row i + B. These are
// the shuffle lane numbers (0..N-1 from row i, N..2N-1 from row i + B) of the two new rows.
constexpr int swap_lane(int n, int b, bool second, int k) {
  if (!second)
    return (k & b) != 0 ? n + k - b : k;
  return (k & b) != 0 ? n + k : k + b;
}

template <class V, int N, int B, bool Second, std::size_t... K>
inline __attribute__((always_inline)) void swap_words(const V* x, const V* y, V* out,
                                                      std::index_sequence<K...>) {
  *out = __builtin_shufflevector(*x, *y, swap_lane(N, B, Second, static_cast<int>(K))...);
}

template <class V, int N, int B>
inline __attribute__((always_inline)) void transpose(V* r) {
  if constexpr (B > 0) {
    for (int i = 0; i < N; ++i)
      if ((i & B) == 0) {
        const V x = r[i];
        const V y = r[i + B];
        swap_words<V, N, B, false>(&x, &y, &r[i], std::make_index_sequence<N>{});
        swap_words<V, N, B, true>(&x, &y, &r[i + B], std::make_index_sequence<N>{});
      }
    transpose<V, N, B / 2>(r);
  }
}

// Sets m[j] to word j of every lane's block (lane l: `blocks[l]`), for the block's 16 words: N
// loads of N words and their transposition, 16 / N times.
template <class V, int N>
inline __attribute__((always_inline)) void load_words(const unsigned char* const* blocks, V* m) {
  for (int part = 0; part < 16 / N; ++part) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    V* r = m + N * part;
    for (int l = 0; l < N; ++l)
      std::memcpy(&r[l], blocks[l] + sizeof(V) * part, sizeof(V));
    transpose<V, N, N / 2>(r);
#else
    for (int j = 0; j < N; ++j)
      for (int l = 0; l < N; ++l)
        m[N * part + j][l] = word(blocks[l] + 4 * (N * part + j));
#endif
  }
}

// a, b, c, d := d, b + rotl(a + f + sine + word, s), b, c
#define SHARDFLOW_MD5_STEP(f, i, g, s)                                                             \
  do {                                                                                             \
    const V t = a + (f) + sines[i] + m[g];                                                         \
    a = d;                                                                                         \
    d = c;                                                                                         \
    c = b;                                                                                         \
    b = b + ((t << (s)) | (t >> (32 - (s))));                                                      \
  } while (false)

// One MD5 compression per lane: `state[0..3]` (a, b, c, d) absorb the block `blocks[lane]`.
template <class V, int N>
inline __attribute__((always_inline)) void compress_body(V* state,
                                                         const unsigned char* const* blocks) {
  V m[16];
  load_words<V, N>(blocks, m);
  V a = state[0];
  V b = state[1];
  V c = state[2];
  V d = state[3];
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

void compress_generic(u32x8* state, const unsigned char* const* blocks) {
  compress_body<u32x8, 8>(state, blocks);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) void compress_avx2(u32x8* state,
                                                   const unsigned char* const* blocks) {
  compress_body<u32x8, 8>(state, blocks);
}

// Sixteen lanes in AVX-512 registers: each rotation is one instruction (vprold) instead of two
// shifts and an or, each round function one ternary-logic instruction, and twice the lanes.
__attribute__((target("avx512f"))) void compress_avx512(u32x16* state,
                                                        const unsigned char* const* blocks) {
  compress_body<u32x16, 16>(state, blocks);
}
#endif

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

// The lanes: N messages at a time, each lane taking the next message when its own is done.
template <class V, int N>
void many_with(void (*compress)(V*, const unsigned char* const*), const std::string_view* in,
               std::size_t n, digest* out) {
  static const unsigned char idle[block_size] = {};
  // Longest first, so that the lanes run out of work at about the same time.
  thread_local std::vector<std::size_t> order;
  order.resize(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [in](std::size_t x, std::size_t y) { return in[x].size() > in[y].size(); });
  V state[4] = {};
  lane ls[N];
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
  for (int l = 0; l < N; ++l)
    load(l);
  while (busy > 0) {
    const unsigned char* blocks[N];
    for (int l = 0; l < N; ++l)
      blocks[l] = ls[l].busy ? ls[l].block(in) : idle;
    compress(state, blocks);
    for (int l = 0; l < N; ++l) {
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

bool has(kernel k) {
  switch (k) {
#if defined(__x86_64__) || defined(__i386__)
    case kernel::avx512:
      return __builtin_cpu_supports("avx512f");
    case kernel::avx2:
      return __builtin_cpu_supports("avx2");
#else
    case kernel::avx512:
    case kernel::avx2:
      return false;
#endif
    case kernel::generic:
      return true;
  }
  return false;
}

void run(kernel k, const std::string_view* in, std::size_t n, digest* out) {
  switch (k) {
#if defined(__x86_64__) || defined(__i386__)
    case kernel::avx512:
      return many_with<u32x16, 16>(compress_avx512, in, n, out);
    case kernel::avx2:
      return many_with<u32x8, 8>(compress_avx2, in, n, out);
#else
    case kernel::avx512:
    case kernel::avx2:
#endif
    case kernel::generic:
      return many_with<u32x8, 8>(compress_generic, in, n, out);
  }
}

kernel best() {
  for (auto k : {kernel::avx512, kernel::avx2})
    if (has(k))
      return k;
  return kernel::generic;
}

} // namespace

void many(const std::string_view* in, std::size_t n, digest* out) {
  if (n == 1 && openssl_md5(in[0], out[0]))
    return; // one message: the idle lanes would make this slower than OpenSSL
  static const kernel k = best();
  run(k, in, n, out);
}

bool many_in(kernel k, const std::string_view* in, std::size_t n, digest* out) {
  if (!has(k))
    return false;
  run(k, in, n, out);
  return true;
}

} // namespace shardflow::md5
