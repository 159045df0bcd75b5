// fuzz/sequence_number.cpp - sequence_base::parse and the ordering of sequence numbers against a
// reference written from the header's contract.
//
// Input: two texts separated by the first newline, then (after a second newline) up to 8 bytes of
// sub-sequence numbers. Checks: parse accepts exactly 1..129 decimal digits or a sentinel name and
// keeps the text; compare orders numbers numerically (leading zeros ignored) and sentinels by
// meaning, and is antisymmetric; to_uint64 is the value below 2^64; sequence_number compares by base,
// then sub (absent counts as 0), then user_sub.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include <shardflow/core/error.hpp>
#include <shardflow/core/sequence_number.hpp>

namespace {

using shardflow::sequence_base;

// A reference value: a rank for sentinels (numbers rank 2), the digits without leading zeros.
struct reference {
  int rank = 2;
  std::string digits;
};

std::optional<reference> reference_parse(std::string_view text) {
  static constexpr std::pair<std::string_view, int> sentinels[]
    = {{"TRIM_HORIZON", 0}, {"AT_TIMESTAMP", 1}, {"LATEST", 3}, {"SHARD_END", 4}};
  for (const auto& [name, rank] : sentinels)
    if (text == name)
      return reference{rank, {}};
  if (text.empty() || text.size() > sequence_base::max_digits)
    return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9')
      return std::nullopt;
  const auto first = text.find_first_not_of('0');
  return reference{2, std::string{first == std::string_view::npos ? "" : text.substr(first)}};
}

int sign(int x) {
  return (x > 0) - (x < 0);
}

int reference_compare(const reference& x, const reference& y) {
  if (x.rank != y.rank)
    return sign(x.rank - y.rank);
  if (x.digits.size() != y.digits.size())
    return x.digits.size() < y.digits.size() ? -1 : 1;
  return sign(x.digits.compare(y.digits));
}

std::optional<std::uint64_t> reference_uint64(const reference& x) {
  if (x.rank != 2 || x.digits.size() > 20)
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : x.digits) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10)
      return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<sequence_base> parse(std::string_view text) {
  try {
    return sequence_base::parse(text);
  } catch (const shardflow::error&) {
    return std::nullopt;
  }
}

// Parses `text`, checks it against the reference, and returns both (or nothing if invalid).
std::optional<std::pair<sequence_base, reference>> checked(std::string_view text) {
  const auto got = parse(text);
  const auto want = reference_parse(text);
  SHARDFLOW_FUZZ_CHECK(got.has_value() == want.has_value());
  if (!got)
    return std::nullopt;
  SHARDFLOW_FUZZ_CHECK(got->to_string() == text);
  SHARDFLOW_FUZZ_CHECK(got->is_number() == (want->rank == 2));
  SHARDFLOW_FUZZ_CHECK(got->digits() == (got->is_number() ? text.size() : 0));
  SHARDFLOW_FUZZ_CHECK(got->to_uint64() == reference_uint64(*want));
  if (const auto v = got->to_uint64())
    SHARDFLOW_FUZZ_CHECK(compare(sequence_base{*v}, *got) == 0);
  return std::pair{*got, *want};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  const auto cut = in.find('\n');
  const auto a_text = in.substr(0, cut);
  in = cut == std::string_view::npos ? std::string_view{} : in.substr(cut + 1);
  const auto cut2 = in.find('\n');
  const auto b_text = in.substr(0, cut2);
  const auto subs = cut2 == std::string_view::npos ? std::string_view{} : in.substr(cut2 + 1);
  const auto a = checked(a_text);
  const auto b = checked(b_text);
  if (!a || !b)
    return 0;
  const int want = reference_compare(a->second, b->second);
  SHARDFLOW_FUZZ_CHECK(sign(compare(a->first, b->first)) == want);
  SHARDFLOW_FUZZ_CHECK(sign(compare(b->first, a->first)) == -want);
  SHARDFLOW_FUZZ_CHECK(compare(a->first, a->first) == 0);
  SHARDFLOW_FUZZ_CHECK((a->first < b->first) == (want < 0));
  // Full positions: sub-sequence numbers from the tail (absent when a byte is 0xFF), user_sub 0..3.
  auto byte = [&](std::size_t i) {
    return i < subs.size() ? static_cast<std::uint8_t>(subs[i]) : 0;
  };
  shardflow::sequence_number x{a->first, std::nullopt, byte(2) % 4u, 4};
  shardflow::sequence_number y{b->first, std::nullopt, byte(3) % 4u, 4};
  if (byte(0) != 0xFF)
    x.sub = byte(0);
  if (byte(1) != 0xFF)
    y.sub = byte(1);
  int full = want;
  if (full == 0)
    full = sign(static_cast<int>(x.sub.value_or(0)) - static_cast<int>(y.sub.value_or(0)));
  if (full == 0)
    full = sign(static_cast<int>(x.user_sub) - static_cast<int>(y.user_sub));
  SHARDFLOW_FUZZ_CHECK(sign(compare(x, y)) == full);
  SHARDFLOW_FUZZ_CHECK(sign(compare(y, x)) == -full);
  return 0;
}
