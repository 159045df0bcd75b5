#include "adapters/kpl.hpp"

#include <catch2/catch.hpp>

using namespace shardflow;

SCENARIO("an aggregate matches erlmld's reference vector byte for byte", "[adapters][kpl]") {
  // ERL src/kpl_agg.erl simple_aggregation_test: (pk1, ehk1, data1), (pk2, ehk2, data2).
  kpl::aggregator agg;
  agg.add("pk1", "data1", std::string{"ehk1"});
  agg.add("pk2", "data2", std::string{"ehk2"});
  const auto out = agg.build(kpl::magic::standard);
  const std::string proto = std::string{"\x0A\x03pk1\x0A\x03pk2\x12\x04" "ehk1\x12\x04" "ehk2", 22}
                            + std::string{"\x1A\x0B\x08\x00\x10\x00\x1A\x05" "data1", 13}
                            + std::string{"\x1A\x0B\x08\x01\x10\x01\x1A\x05" "data2", 13};
  const std::string md5 = "\xF4\x29\x5D\x9B\xAD\xBE\x3A\x1E\xF0\xDF\xD8\x08\x1A\xCD\x56\x04";
  CHECK(out == std::string{"\xF3\x89\x9A\xC2"} + proto + md5);
}

SCENARIO("aggregates of every magic unpack to their user records in order", "[adapters][kpl]") {
  for (auto m : {kpl::magic::standard, kpl::magic::erlmld_plain, kpl::magic::erlmld_deflated}) {
    kpl::aggregator agg;
    agg.add("a", "first");
    agg.add("b", std::string(1000, 'x'));
    agg.add("a", "third", std::string{"12345"});
    const auto bytes = agg.build(m); // the user records are views into these bytes
    auto r = kpl::unpack(bytes);
    REQUIRE(r.what == kpl::unpack_result::kind::aggregate);
    REQUIRE(r.records.size() == 3);
    CHECK(r.records[0].partition_key == "a");
    CHECK(r.records[1].data == std::string(1000, 'x'));
    CHECK(r.records[2].explicit_hash_key == std::string{"12345"});
    CHECK_FALSE(r.records[0].explicit_hash_key);
  }
}

SCENARIO("what is not an aggregate stays one record, and a broken one is reported",
         "[adapters][kpl]") {
  CHECK(kpl::unpack("hello").what == kpl::unpack_result::kind::plain);
  CHECK(kpl::unpack("").what == kpl::unpack_result::kind::plain);
  kpl::aggregator agg;
  agg.add("k", "v");
  auto good = agg.build(kpl::magic::erlmld_plain);
  GIVEN("erlmld's magics switched off") {
    CHECK(kpl::unpack(good, false).what == kpl::unpack_result::kind::plain);
  }
  GIVEN("a wrong MD5") {
    auto bad = good;
    bad.back() ^= 1;
    auto r = kpl::unpack(bad);
    CHECK(r.what == kpl::unpack_result::kind::corrupt);
    CHECK(r.why == "the MD5 of the aggregate does not match");
  }
  GIVEN("a deflated aggregate that does not inflate") {
    auto r = kpl::unpack(std::string{"\x01\x89\x9A\xC2garbage", 11});
    CHECK(r.what == kpl::unpack_result::kind::corrupt);
  }
}
