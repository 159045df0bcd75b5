// fuzz/md5.cpp - md5::many in each kernel this CPU has (lanes side by side) against OpenSSL.
//
// Input: a count byte n (1..20 inputs, so that lanes run dry at different blocks), then the bytes,
// cut into n pieces at lengths read from the next bytes. Checks: every digest of `many`, and of
// `many_in` each kernel the CPU has, equals OpenSSL's EVP MD5 of the same piece.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "fuzz/check.hpp"
#include <shardflow/kcl/md5.hpp>

namespace {

shardflow::md5::digest openssl_md5(std::string_view bytes) {
  shardflow::md5::digest d{};
  unsigned int size = 0;
  SHARDFLOW_FUZZ_CHECK(EVP_Digest(bytes.data(), bytes.size(), d.data(), &size, EVP_md5(), nullptr)
                       == 1);
  SHARDFLOW_FUZZ_CHECK(size == d.size());
  return d;
}

// Cuts `in` into `n` pieces; piece i takes (length byte i) * 3 bytes (lengths past 64 bytes, so
// several blocks), the last one the rest.
std::vector<std::string_view> pieces(std::string_view in, std::size_t n) {
  const auto lengths = in.substr(0, std::min(in.size(), n - 1));
  in.remove_prefix(lengths.size());
  std::vector<std::string_view> out;
  for (char c : lengths) {
    const auto len = std::min(in.size(),
                              static_cast<std::size_t>(static_cast<unsigned char>(c)) * 3);
    out.push_back(in.substr(0, len));
    in.remove_prefix(len);
  }
  out.push_back(in);
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::size_t n = 1 + data[0] % 20;
  const auto in = pieces({reinterpret_cast<const char*>(data) + 1, size - 1}, n);
  namespace md5 = shardflow::md5;
  std::vector<md5::digest> want(in.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    want[i] = openssl_md5(in[i]);
  std::vector<md5::digest> got(in.size());
  md5::many(in.data(), in.size(), got.data());
  SHARDFLOW_FUZZ_CHECK(got == want);
  for (auto k : {md5::kernel::avx512, md5::kernel::avx2, md5::kernel::generic})
    if (md5::many_in(k, in.data(), in.size(), got.data()))
      SHARDFLOW_FUZZ_CHECK(got == want);
  return 0;
}
