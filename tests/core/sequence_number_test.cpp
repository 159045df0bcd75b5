#include <shardflow/core/sequence_number.hpp>

#include <random>
#include <string>

#include <catch2/catch.hpp>

#include <shardflow/core/error.hpp>

using namespace shardflow;

namespace {

// Two realistic 56-digit Kinesis sequence numbers; the second is larger by one in the last digit.
const std::string kinesis_a = "49590338271490256608559692538361571095921575989136588898";
const std::string kinesis_b = "49590338271490256608559692538361571095921575989136588899";

errc code_of(std::string_view text) {
  try {
    sequence_base::parse(text);
  } catch (const error& e) {
    return e.code();
  }
  return errc::none;
}

} // namespace

SCENARIO("56-digit sequence numbers order numerically and keep their text", "[flushers][seq]") {
  auto a = sequence_base::parse(kinesis_a);
  auto b = sequence_base::parse(kinesis_b);
  CHECK(a < b);
  CHECK(b > a);
  CHECK(a != b);
  CHECK(a.to_string() == kinesis_a);
  CHECK(a.digits() == 56);
  GIVEN("numbers of different lengths") {
    THEN("the longer one is larger, as numbers, not as text") {
      CHECK(sequence_base::parse("9") < sequence_base::parse("10"));
      CHECK(sequence_base::parse("99999999999999999999") < sequence_base::parse(kinesis_a));
    }
  }
  GIVEN("leading zeros, as DynamoDB Streams sends them") {
    auto padded = sequence_base::parse("000000000000000000123");
    THEN("they do not change the order but are kept in the text") {
      CHECK(padded == sequence_base::parse("123"));
      CHECK(padded < sequence_base::parse("124"));
      CHECK(padded.to_string() == "000000000000000000123");
    }
  }
  GIVEN("the largest number Kinesis allows") {
    const std::string longest(129, '9');
    auto x = sequence_base::parse(longest);
    THEN("it round-trips and orders above a 128-digit one") {
      CHECK(x.to_string() == longest);
      CHECK(sequence_base::parse(std::string(128, '9')) < x);
    }
  }
}

SCENARIO("sequence numbers from integers agree with parsed ones", "[flushers][seq]") {
  for (std::uint64_t v :
       {0ull, 1ull, 9ull, 10ull, 12345678901234567890ull, 18446744073709551615ull}) {
    sequence_base x{v};
    CHECK(x == sequence_base::parse(std::to_string(v)));
    CHECK(x.to_string() == std::to_string(v));
    CHECK(x.to_uint64() == v);
  }
  CHECK(sequence_base{41} < sequence_base{42});
  CHECK_FALSE(sequence_base::parse("18446744073709551616").to_uint64().has_value());
  CHECK_FALSE(sequence_base::parse(kinesis_a).to_uint64().has_value());
}

SCENARIO("parsing rejects what is not a sequence number with a clear error", "[flushers][seq]") {
  CHECK(code_of("") == errc::bad_sequence_number);
  CHECK(code_of("12a4") == errc::bad_sequence_number);
  CHECK(code_of("-1") == errc::bad_sequence_number);
  CHECK(code_of(" 1") == errc::bad_sequence_number);
  CHECK(code_of("1 ") == errc::bad_sequence_number);
  CHECK(code_of("latest") == errc::bad_sequence_number);
  CHECK(code_of(std::string(130, '1')) == errc::bad_sequence_number);
  CHECK_THROWS_WITH(sequence_base::parse("12a4"),
                    Catch::Contains("12a4") && Catch::Contains("character 3 is 'a'"));
  CHECK_THROWS_WITH(sequence_base::parse(std::string(130, '1')),
                    Catch::Contains("130 digits") && Catch::Contains("at most 129"));
}

SCENARIO("the daemon's sentinels parse and order by meaning", "[flushers][seq]") {
  using k = sequence_base::kind;
  auto trim = sequence_base::parse("TRIM_HORIZON");
  auto at_ts = sequence_base::parse("AT_TIMESTAMP");
  auto latest = sequence_base::parse("LATEST");
  auto end = sequence_base::parse("SHARD_END");
  CHECK(trim.what() == k::trim_horizon);
  CHECK(latest.what() == k::latest);
  CHECK(at_ts.what() == k::at_timestamp);
  CHECK(end.what() == k::shard_end);
  CHECK(end.to_string() == "SHARD_END");
  CHECK_FALSE(end.is_number());
  auto n = sequence_base::parse(kinesis_a);
  CHECK(trim < at_ts);
  CHECK(at_ts < n);
  CHECK(n < latest);
  CHECK(latest < end);
  CHECK(trim == sequence_base::sentinel(k::trim_horizon));
}

SCENARIO("a full sequence number orders by base, sub-sequence number, then user record",
         "[flushers][seq]") {
  sequence_number x{sequence_base::parse(kinesis_a), 0, 0, 3};
  sequence_number y = x;
  y.user_sub = 1;
  sequence_number z = x;
  z.sub = 1;
  sequence_number w{sequence_base::parse(kinesis_b), std::nullopt, 0, 0};
  CHECK(x < y);
  CHECK(y < z);
  CHECK(z < w);
  CHECK(to_string(y) == kinesis_a + "/0#1:3");
  CHECK(to_string(w) == kinesis_b);
}

SCENARIO("only a user record that is not the last of its aggregate is a sub-record",
         "[flushers][seq]") {
  // erlmld's is_sub_record_test.
  sequence_number first_of_two{{}, std::nullopt, 0, 2};
  sequence_number last_of_two{{}, std::nullopt, 1, 2};
  sequence_number plain{};
  CHECK(first_of_two.is_sub_record());
  CHECK_FALSE(last_of_two.is_sub_record());
  CHECK_FALSE(plain.is_sub_record());
}

SCENARIO("every length of digits parses back to its text and orders like its number",
         "[core][seq]") {
  // Lengths 1 to 129 cover every split of the eight-digit steps and the odd leading digit; the
  // reference order is that of the texts without their leading zeros (shorter is smaller).
  std::mt19937 rng{7};
  std::uniform_int_distribution<int> digit{0, 9};
  const auto numeric_text = [](const std::string& s) {
    const auto nz = s.find_first_not_of('0');
    return nz == std::string::npos ? std::string{"0"} : s.substr(nz);
  };
  std::string previous = "0";
  for (std::size_t n = 1; n <= sequence_base::max_digits; ++n) {
    for (int k = 0; k < 8; ++k) {
      std::string text;
      for (std::size_t i = 0; i < n; ++i)
        text += static_cast<char>('0' + (k == 0 ? 9 : digit(rng)));
      const auto x = sequence_base::parse(text);
      CHECK(x.to_string() == text);
      const auto a = numeric_text(text);
      const auto b = numeric_text(previous);
      const int expected = a.size() != b.size() ? (a.size() < b.size() ? -1 : 1)
                                                : (a < b ? -1 : (a > b ? 1 : 0));
      CHECK(compare(x, sequence_base::parse(previous)) == expected);
      previous = text;
    }
  }
}

SCENARIO("a bad character anywhere is named at its own position", "[core][seq]") {
  // The first character is the sentinel case; every other position, in every split of the
  // eight-digit steps, with a second bad character after it: the first one is named.
  for (std::size_t n : {2u, 7u, 8u, 9u, 16u, 17u, 56u, 129u}) {
    for (std::size_t at = 1; at < n; ++at) {
      std::string text(n, '5');
      text[at] = at % 2 == 0 ? 'x' : '/';
      if (at + 1 < n)
        text[n - 1] = ':';
      const std::string named
        = "character " + std::to_string(at + 1) + " is '" + std::string(1, text[at]) + "'";
      try {
        (void) sequence_base::parse(text);
        FAIL("parsed " << text);
      } catch (const error& e) {
        CHECK(std::string{e.what()}.find(named) != std::string::npos);
      }
    }
  }
}
