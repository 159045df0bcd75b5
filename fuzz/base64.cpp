// fuzz/base64.cpp - base64::decode against a bit-by-bit reference decoder, and encode round trips.
//
// Checks: decode accepts exactly what the reference accepts (standard padded base64, '=' only as
// the last one or two characters) and yields the same bytes; decode(encode(x)) == x for any bytes x.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include <shardflow/flushers/base64.hpp>

namespace {

int value_of(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

// Six bits per character, a byte out whenever eight have gathered; leftover bits are dropped.
bool reference_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0)
    return false;
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=')
    ++pad;
  std::uint32_t bits = 0;
  int held = 0;
  for (std::size_t i = 0; i + pad < in.size(); ++i) {
    const int v = value_of(in[i]);
    if (v < 0)
      return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out.push_back(static_cast<char>((bits >> held) & 0xFF));
    }
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in{reinterpret_cast<const char*>(data), size};
  std::string got;
  std::string want;
  const bool ok = shardflow::base64::decode(in, got);
  SHARDFLOW_FUZZ_CHECK(ok == reference_decode(in, want));
  if (ok)
    SHARDFLOW_FUZZ_CHECK(got == want);
  const auto encoded = shardflow::base64::encode(in);
  SHARDFLOW_FUZZ_CHECK(encoded.size() == (size + 2) / 3 * 4);
  SHARDFLOW_FUZZ_CHECK(shardflow::base64::decode(encoded, got) && got == in);
  return 0;
}
