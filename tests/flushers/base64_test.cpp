#include <shardflow/flushers/base64.hpp>

#include <random>
#include <string>

#include <catch2/catch.hpp>
#include <openssl/evp.h> // the reference decoder of the last scenario

using namespace shardflow;

namespace {

// A reference encoder, six bits at a time straight from RFC 4648.
std::string reference_encode(const std::string& in) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  const std::size_t bits = in.size() * 8;
  for (std::size_t at = 0; at < bits; at += 6) {
    unsigned v = 0;
    for (std::size_t b = at; b < at + 6; ++b) {
      const bool set = b < bits
                       && ((static_cast<unsigned char>(in[b / 8]) >> (7 - b % 8)) & 1) != 0;
      v = v << 1 | (set ? 1U : 0U);
    }
    out += alphabet[v];
  }
  while (out.size() % 4 != 0)
    out += '=';
  return out;
}

bool in_alphabet(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+'
         || c == '/';
}

} // namespace

SCENARIO("base64 decodes only the standard padded form", "[flushers][base64]") {
  std::string out;
  CHECK(base64::decode("aGVsbG8=", out));
  CHECK(out == "hello");
  CHECK(base64::decode("", out));
  CHECK(out.empty());
  CHECK(base64::decode("aGk=", out));
  CHECK(out == "hi");
  CHECK(base64::decode("QR==", out)); // bits past the data are ignored
  CHECK(out == "A");
  CHECK_FALSE(base64::decode("aGVsbG8", out)); // no padding
  CHECK_FALSE(base64::decode("!!not-base64!!", out));
  CHECK_FALSE(base64::decode("aG=sbG8=", out)); // '=' inside
  CHECK_FALSE(base64::decode("a===", out));
  CHECK_FALSE(base64::decode("====", out));
  CHECK_FALSE(base64::decode("aGk= ", out));
  CHECK_FALSE(base64::decode(" aGk", out));
  CHECK(base64::encode("hello") == "aGVsbG8=");
  CHECK(base64::encode("") == "");
}

SCENARIO("base64 round trips every length, in the vector blocks and the tail alike",
         "[flushers][base64]") {
  std::mt19937 rng{3};
  for (std::size_t n = 0; n < 400; ++n) {
    std::string bytes(n, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    const auto text = reference_encode(bytes);
    CHECK(base64::encode(bytes) == text);
    std::string out;
    INFO(n << " bytes");
    REQUIRE(base64::decode(text, out));
    CHECK(out == bytes);
  }
}

SCENARIO("base64 rejects any character outside the alphabet, wherever it is",
         "[flushers][base64]") {
  std::mt19937 rng{5};
  std::string out;
  int rejected = 0;
  // 400 characters go mostly through the vector blocks; 44 (under 48) only through the table.
  for (std::size_t size : {300, 33}) {
    std::string bytes(size, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    const auto text = reference_encode(bytes); // no padding
    for (int c = 0; c < 256; ++c) {
      if (in_alphabet(static_cast<unsigned char>(c)))
        continue;
      for (std::size_t at = 0; at < text.size(); at += 1 + (size > 100 ? rng() % 7 : 0)) {
        auto bad = text;
        bad[at] = static_cast<char>(c);
        if (c == '=' && at + 2 >= bad.size() && (at + 1 == bad.size() || bad.back() == '='))
          continue; // valid padding
        INFO("character " << c << " at " << at << " of " << text.size());
        CHECK_FALSE(base64::decode(bad, out));
        ++rejected;
      }
    }
  }
  CHECK(rejected > 15'000);
  // Every valid character at every place of a block decodes to its value.
  for (int c = 0; c < 256; ++c) {
    if (!in_alphabet(static_cast<unsigned char>(c)))
      continue;
    auto good = std::string(64, static_cast<char>(c));
    std::string expected;
    expected.resize(48);
    EVP_DecodeBlock(reinterpret_cast<unsigned char*>(expected.data()),
                    reinterpret_cast<const unsigned char*>(good.data()), 64);
    INFO("character " << c);
    REQUIRE(base64::decode(good, out));
    CHECK(out == expected);
  }
}
