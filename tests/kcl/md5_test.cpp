#include <shardflow/kcl/md5.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace shardflow;

namespace {

std::string hex(const md5::digest& d) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (auto byte : d) {
    out += digits[byte >> 4];
    out += digits[byte & 15];
  }
  return out;
}

} // namespace

SCENARIO("md5::of gives RFC 1321's test vectors", "[kcl][md5]") {
  CHECK(hex(md5::of("")) == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(hex(md5::of("abc")) == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(hex(md5::of("message digest")) == "f96b697d7cb7938d525a2f31aaf161d0");
  CHECK(
    hex(md5::of("12345678901234567890123456789012345678901234567890123456789012345678901234567890"))
    == "57edf4a22be3c955ac49da2e2107b67a");
}

SCENARIO("md5::many gives the same digests as md5::of, in each kernel's lanes", "[kcl][md5]") {
  std::mt19937 rng{42};
  auto random_bytes = [&](std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s)
      c = static_cast<char>(rng());
    return s;
  };
  GIVEN("RFC 1321's vectors among others") {
    const std::vector<std::string> in = {"", "a", "abc", "message digest",
                                         "abcdefghijklmnopqrstuvwxyz"};
    std::vector<std::string_view> views(in.begin(), in.end());
    std::vector<md5::digest> out(views.size());
    md5::many(views.data(), views.size(), out.data());
    CHECK(hex(out[0]) == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(hex(out[1]) == "0cc175b9c0f1b6a831c399e269772661");
    CHECK(hex(out[2]) == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(hex(out[3]) == "f96b697d7cb7938d525a2f31aaf161d0");
    CHECK(hex(out[4]) == "c3fcd3d76192e4007dfb496cca67e13b");
  }
  GIVEN("every length up to five blocks (each padding case), and long messages among short ones") {
    std::vector<std::string> in;
    for (std::size_t n = 0; n <= 5 * 64; ++n)
      in.push_back(random_bytes(n));
    for (int i = 0; i < 20; ++i)
      in.push_back(random_bytes(rng() % 20'000));
    std::shuffle(in.begin(), in.end(), rng);
    std::vector<std::string_view> views(in.begin(), in.end());
    std::vector<md5::digest> out(views.size());
    md5::many(views.data(), views.size(), out.data());
    for (std::size_t i = 0; i < in.size(); ++i) {
      INFO("message of " << in[i].size() << " bytes");
      CHECK(out[i] == md5::of(in[i]));
    }
    int kernels = 0;
    for (auto k : {md5::kernel::avx512, md5::kernel::avx2, md5::kernel::generic}) {
      std::vector<md5::digest> lanes(views.size());
      if (!md5::many_in(k, views.data(), views.size(), lanes.data()))
        continue;
      ++kernels;
      for (std::size_t i = 0; i < in.size(); ++i) {
        INFO("kernel " << static_cast<int>(k) << ", message of " << in[i].size() << " bytes");
        CHECK(lanes[i] == out[i]);
      }
    }
    CHECK(kernels >= 1); // the generic lanes run everywhere
  }
  GIVEN("fewer messages than lanes") {
    for (std::size_t n = 0; n <= 17; ++n) {
      std::vector<std::string> in;
      for (std::size_t i = 0; i < n; ++i)
        in.push_back(random_bytes(rng() % 200));
      std::vector<std::string_view> views(in.begin(), in.end());
      std::vector<md5::digest> out(n);
      md5::many(views.data(), n, out.data());
      for (std::size_t i = 0; i < n; ++i)
        CHECK(out[i] == md5::of(in[i]));
    }
  }
}
