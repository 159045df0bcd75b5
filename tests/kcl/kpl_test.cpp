#include <shardflow/kcl/kpl.hpp>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "kpl_agg.pb.h"
#include <google/protobuf/stubs/logging.h>
#include <shardflow/kcl/md5.hpp>
#include <zlib.h>

using namespace shardflow;

SCENARIO("an aggregate matches erlmld's reference vector byte for byte", "[kcl][kpl]") {
  // ERL src/kpl_agg.erl simple_aggregation_test: (pk1, ehk1, data1), (pk2, ehk2, data2).
  kpl::aggregator agg;
  agg.add("pk1", "data1", std::string{"ehk1"});
  agg.add("pk2", "data2", std::string{"ehk2"});
  const auto out = agg.build(kpl::magic::standard);
  const std::string proto = std::string{"\x0A\x03pk1\x0A\x03pk2\x12\x04"
                                        "ehk1\x12\x04"
                                        "ehk2",
                                        22}
                            + std::string{"\x1A\x0B\x08\x00\x10\x00\x1A\x05"
                                          "data1",
                                          13}
                            + std::string{"\x1A\x0B\x08\x01\x10\x01\x1A\x05"
                                          "data2",
                                          13};
  const std::string md5 = "\xF4\x29\x5D\x9B\xAD\xBE\x3A\x1E\xF0\xDF\xD8\x08\x1A\xCD\x56\x04";
  CHECK(out == std::string{"\xF3\x89\x9A\xC2"} + proto + md5);
}

SCENARIO("aggregates of every magic unpack to their user records in order", "[kcl][kpl]") {
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

SCENARIO("what is not an aggregate stays one record, and a broken one is reported", "[kcl][kpl]") {
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

namespace {

// An aggregate around `proto` with the standard magic and a correct MD5.
std::string wrap(const std::string& proto) {
  const auto digest = md5::of(proto);
  return std::string{"\xF3\x89\x9A\xC2"} + proto
         + std::string{reinterpret_cast<const char*>(digest.data()), digest.size()};
}

enum class outcome { plain, aggregate, corrupt };

// Unpacks `proto` (as a standard aggregate with a correct MD5) and checks the result against what
// libprotobuf makes of the same bytes. Returns what it was.
outcome check_against_libprotobuf(const std::string& proto) {
  kpl::AggregatedRecord reference;
  const bool parses = reference.ParseFromString(proto);
  bool in_range = parses;
  for (int i = 0; parses && i < reference.records_size(); ++i) {
    const auto& r = reference.records(i);
    in_range = in_range
               && r.partition_key_index()
                    < static_cast<std::uint64_t>(reference.partition_key_table_size())
               && (!r.has_explicit_hash_key_index()
                   || r.explicit_hash_key_index()
                        < static_cast<std::uint64_t>(reference.explicit_hash_key_table_size()));
  }
  const auto bytes = wrap(proto);
  const auto got = kpl::unpack(bytes);
  if (proto.empty()) { // the KCL's rule: no room for an aggregate, so a plain record
    CHECK(got.what == kpl::unpack_result::kind::plain);
    return outcome::plain;
  }
  if (!parses) {
    CHECK(got.what == kpl::unpack_result::kind::corrupt);
    CHECK(got.why == "the aggregate is not a valid protobuf");
    return outcome::corrupt;
  }
  if (!in_range) {
    CHECK(got.what == kpl::unpack_result::kind::corrupt);
    CHECK(got.why == "a key index of the aggregate is out of range");
    return outcome::corrupt;
  }
  CHECK(got.what == kpl::unpack_result::kind::aggregate);
  REQUIRE(got.records.size() == static_cast<std::size_t>(reference.records_size()));
  for (int i = 0; i < reference.records_size(); ++i) {
    const auto& want = reference.records(i);
    const auto& u = got.records[static_cast<std::size_t>(i)];
    CHECK(u.partition_key
          == reference.partition_key_table(static_cast<int>(want.partition_key_index())));
    CHECK(u.data == want.data());
    REQUIRE(u.explicit_hash_key.has_value() == want.has_explicit_hash_key_index());
    if (u.explicit_hash_key)
      CHECK(*u.explicit_hash_key
            == reference.explicit_hash_key_table(static_cast<int>(want.explicit_hash_key_index())));
  }
  return outcome::aggregate;
}

} // namespace

SCENARIO("the wire reader agrees with libprotobuf on random and damaged aggregates", "[kcl][kpl]") {
  google::protobuf::LogSilencer quiet; // libprotobuf logs every message it cannot parse
  std::mt19937 rng{7};
  auto pick = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  int aggregates = 0;
  int corrupt = 0;
  for (int round = 0; round < 3000; ++round) {
    // A random aggregate: key tables, records with tags, unknown fields now and then.
    kpl::AggregatedRecord agg;
    const auto keys = 1 + pick(4);
    for (std::uint32_t i = 0; i < keys; ++i)
      agg.add_partition_key_table("key-" + std::to_string(pick(1000)));
    const auto hash_keys = pick(3);
    for (std::uint32_t i = 0; i < hash_keys; ++i)
      agg.add_explicit_hash_key_table(std::to_string(pick(1u << 30)));
    for (std::uint32_t i = 0, n = pick(6); i < n; ++i) {
      auto* r = agg.add_records();
      r->set_partition_key_index(pick(keys + 1)); // now and then out of range
      if (pick(2) != 0)
        r->set_explicit_hash_key_index(pick(hash_keys + 1));
      r->set_data(std::string(pick(300), static_cast<char>('a' + pick(26))));
      if (pick(4) == 0)
        r->add_tags()->set_key("tag");
    }
    std::string proto = agg.SerializeAsString();
    if (pick(4) == 0) // an unknown varint field, then an unknown group
      proto += std::string{"\x38\x96\x01\x43\x08\x01\x44", 7};
    // Damage some: flip a byte, cut the end, or insert a byte.
    if (!proto.empty() && pick(2) == 0) {
      const auto at = pick(static_cast<std::uint32_t>(proto.size()));
      switch (pick(3)) {
        case 0:
          proto[at] = static_cast<char>(rng());
          break;
        case 1:
          proto.resize(at);
          break;
        default:
          proto.insert(at, 1, static_cast<char>(rng()));
      }
    }
    INFO("round " << round << ", protobuf of " << proto.size() << " bytes");
    switch (check_against_libprotobuf(proto)) {
      case outcome::aggregate:
        ++aggregates;
        break;
      case outcome::corrupt:
        ++corrupt;
        break;
      case outcome::plain:
        break;
    }
  }
  // Both outcomes were exercised many times.
  CHECK(aggregates > 500);
  CHECK(corrupt > 500);
}

SCENARIO("the wire reader agrees with libprotobuf on the wire format's corners", "[kcl][kpl]") {
  google::protobuf::LogSilencer quiet;
  const std::string key = std::string{"\x0A\x01k", 3}; // partition_key_table: "k"
  auto record = [](const std::string& body) {          // records: one Record of `body`
    return std::string{"\x1A"} + static_cast<char>(body.size()) + body;
  };
  const std::string good = std::string{"\x08\x00\x1A\x01x", 5}; // key index 0, data "x"
  struct corner {
    const char* what;
    std::string proto;
    outcome expected;
  };
  const std::vector<corner> corners = {
    {"a minimal aggregate", key + record(good), outcome::aggregate},
    {"a key index varint cut by the record's end",
     key + record(std::string{"\x1A\x01x\x08\x80", 5}), outcome::corrupt},
    {"a varint of eleven bytes",
     key + record(std::string{"\x1A\x01x\x08", 4} + std::string(10, '\x80') + "\x01"),
     outcome::corrupt},
    {"a ten-byte varint (an unknown field)",
     key + record(good + "\x30" + std::string(9, '\x80') + "\x01"), outcome::aggregate},
    {"no data", key + record(std::string{"\x08\x00", 2}), outcome::corrupt},
    {"no key index", key + record(std::string{"\x1A\x01x", 3}), outcome::corrupt},
    {"the key index twice: the last counts", key + record(std::string{"\x08\x05", 2} + good),
     outcome::aggregate},
    {"the key index twice: the last is out of range",
     key + record(good + std::string{"\x08\x05", 2}), outcome::corrupt},
    {"a length beyond the end", key + std::string{"\x1A\x7F", 2} + good, outcome::corrupt},
    {"field number 0", key + record(good) + std::string{"\x00\x00", 2}, outcome::corrupt},
    {"wire type 6", key + record(good) + std::string{"\x0E\x00", 2}, outcome::corrupt},
    {"wire type 7", key + record(good) + std::string{"\x0F\x00", 2}, outcome::corrupt},
    {"an end group without a start", key + record(good) + std::string{"\x0C", 1}, outcome::corrupt},
    {"nested unknown groups", key + record(good + std::string{"\x2B\x33\x08\x01\x34\x2C", 6}),
     outcome::aggregate},
    {"a group closed by another field's end",
     key + std::string{"\x2B\x08\x01\x34", 4} + record(good), outcome::corrupt},
    {"a group never closed", key + record(good) + std::string{"\x2B\x08\x01", 3}, outcome::corrupt},
    {"unknown fixed32 and fixed64 fields",
     key + std::string{"\x2D\x01\x02\x03\x04\x29", 6} + std::string(8, '\x01') + record(good),
     outcome::aggregate},
    {"a tag with its key", key + record(good + std::string{"\x22\x03\x0A\x01t", 5}),
     outcome::aggregate},
    {"a tag without its key", key + record(good + std::string{"\x22\x02\x12\x00", 4}),
     outcome::corrupt},
    // A known field number with another wire type is an unknown field, skipped.
    {"a key table entry of the wrong wire type", std::string{"\x08\x01", 2} + key + record(good),
     outcome::aggregate},
    {"a record of the wrong wire type", key + std::string{"\x18\x01", 2} + record(good),
     outcome::aggregate},
  };
  for (const auto& c : corners) {
    INFO(c.what);
    CHECK(check_against_libprotobuf(c.proto) == c.expected);
  }
}

SCENARIO("the wire reader keeps libprotobuf's limits on keys, lengths and nesting", "[kcl][kpl]") {
  google::protobuf::LogSilencer quiet;
  const std::string key = std::string{"\x0A\x01k", 3};
  const std::string good = std::string{"\x08\x00\x1A\x01x", 5};
  auto record = [](const std::string& body) {
    return std::string{"\x1A"} + static_cast<char>(body.size()) + body;
  };
  // Field 1, length-delimited (key 0x0A), in 1 to 6 bytes; and with bits past 32.
  for (int extra = 0; extra <= 5; ++extra) {
    std::string k = extra == 0 ? std::string{"\x0A"} : std::string{"\x8A"};
    for (int i = 1; i <= extra; ++i)
      k += static_cast<char>(i < extra ? 0x80 : 0x00);
    INFO("a key of " << extra + 1 << " bytes");
    check_against_libprotobuf(k + std::string{"\x01k", 2} + record(good));
  }
  INFO("a five-byte key with bits past 32");
  check_against_libprotobuf(std::string{"\x8A\x80\x80\x80\x10\x01k", 7} + record(good));
  // The key table entry's length (1) in 1 to 6 bytes, and five-byte lengths near 2^31.
  for (int extra = 0; extra <= 5; ++extra) {
    std::string n = extra == 0 ? std::string{"\x01"} : std::string{"\x81"};
    for (int i = 1; i <= extra; ++i)
      n += static_cast<char>(i < extra ? 0x80 : 0x00);
    INFO("a length of " << extra + 1 << " bytes");
    check_against_libprotobuf(std::string{"\x0A"} + n + "k" + record(good));
  }
  for (unsigned char fifth : {0x07, 0x08, 0x0F}) {
    INFO("a five-byte length ending in " << int{fifth});
    check_against_libprotobuf(std::string{"\x0A\xFF\xFF\xFF\xFF", 5} + static_cast<char>(fifth)
                              + "k" + record(good));
  }
  // Unknown groups (field 5) nested n deep: at the top, inside a record, inside a record's tag.
  auto groups = [](int n) {
    return std::string(static_cast<std::size_t>(n), '\x2B')
           + std::string(static_cast<std::size_t>(n), '\x2C');
  };
  int accepted = 0;
  int refused = 0;
  for (int n = 97; n <= 102; ++n) {
    INFO(n << " nested groups");
    const auto g = groups(n);
    auto long_record = [&](const std::string& body) {
      std::string out{"\x1A"};
      auto size = body.size();
      out += static_cast<char>(0x80 | (size & 0x7F));
      out += static_cast<char>(size >> 7);
      return out + body;
    };
    const std::string tag = std::string{"\x0A\x01t", 3} + g;
    std::string tag_field{"\x22"};
    tag_field += static_cast<char>(0x80 | (tag.size() & 0x7F));
    tag_field += static_cast<char>(tag.size() >> 7);
    for (const auto& proto : {key + g + record(good), key + long_record(good + g),
                              key + long_record(good + tag_field + tag)}) {
      if (check_against_libprotobuf(proto) == outcome::aggregate)
        ++accepted;
      else
        ++refused;
    }
  }
  CHECK(accepted > 0); // both sides of the limit were reached
  CHECK(refused > 0);
}

SCENARIO("unpack_all unpacks a batch of plain, standard, erlmld and broken records", "[kcl][kpl]") {
  using kind = kpl::unpack_result::kind;
  struct input {
    std::string bytes;
    kind expected;
    std::size_t users;
  };
  std::vector<input> batch;
  for (int i = 0; i < 40; ++i) {
    const auto users = static_cast<std::size_t>(1 + i % 7);
    kpl::aggregator agg;
    for (std::size_t u = 0; u < users; ++u)
      agg.add("k" + std::to_string(u), std::string(static_cast<std::size_t>(i * 13 % 200), 'x'),
              std::string{"hash-"} + std::to_string(u));
    const auto m = static_cast<kpl::magic>(i % 3);
    auto bytes = agg.build(m);
    if (i % 11 == 0) {
      batch.push_back({"plain record " + std::to_string(i), kind::plain, 0});
    } else if (i % 5 == 0) {
      // A wrong MD5, inside the compression for a deflated aggregate.
      auto unpacked = kpl::unpack(bytes);
      REQUIRE(unpacked.what == kind::aggregate);
      auto body = m == kpl::magic::erlmld_deflated
                    ? std::string{unpacked.inflated.begin(), unpacked.inflated.end()}
                    : bytes.substr(4);
      body.back() ^= 1;
      if (m == kpl::magic::erlmld_deflated) {
        uLongf size = compressBound(static_cast<uLong>(body.size()));
        std::string packed(size, '\0');
        REQUIRE(compress(reinterpret_cast<Bytef*>(packed.data()), &size,
                         reinterpret_cast<const Bytef*>(body.data()),
                         static_cast<uLong>(body.size()))
                == Z_OK);
        packed.resize(size);
        body = packed;
      }
      batch.push_back({bytes.substr(0, 4) + body, kind::corrupt, 0});
    } else {
      batch.push_back({bytes, kind::aggregate, users});
    }
  }
  std::vector<std::string_view> views;
  for (auto& x : batch)
    views.emplace_back(x.bytes);
  std::vector<kpl::unpack_result> out;
  for (int pass = 0; pass < 2; ++pass) { // the second pass reuses what the first left in `out`
    kpl::unpack_all(views.data(), views.size(), true, out);
    REQUIRE(out.size() == batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      INFO("record " << i);
      CHECK(out[i].what == batch[i].expected);
      if (batch[i].expected == kind::corrupt)
        CHECK(out[i].why == "the MD5 of the aggregate does not match");
      REQUIRE(out[i].records.size() == batch[i].users);
      for (std::size_t u = 0; u < batch[i].users; ++u) {
        CHECK(out[i].records[u].partition_key == "k" + std::to_string(u));
        CHECK(out[i].records[u].explicit_hash_key == "hash-" + std::to_string(u));
        CHECK(out[i].records[u].data.size() == i * 13 % 200);
      }
    }
  }
}

namespace {

using kind = kpl::unpack_result::kind;

// An erlmld deflated aggregate of `n` user records of `size` bytes each.
std::string deflated_aggregate(std::size_t n, std::size_t size) {
  kpl::aggregator agg;
  for (std::size_t i = 0; i < n; ++i)
    agg.add("k", std::string(size, 'x'));
  return agg.build(kpl::magic::erlmld_deflated);
}

} // namespace

SCENARIO("a deflate bomb is a corrupt aggregate, not gigabytes", "[kcl][kpl][limits]") {
  // 16 MiB of one byte deflate to about 16 KB; a default-limited worker refuses to inflate them.
  const auto bomb = deflated_aggregate(1, std::size_t{16} << 20);
  REQUIRE(bomb.size() < (std::size_t{64} << 10));
  const auto r = kpl::unpack(bomb);
  CHECK(r.what == kind::corrupt);
  CHECK(r.why == "the compressed aggregate inflates past 10485760 bytes (max_inflated_bytes)");
  CHECK(r.records.empty());
  CHECK(r.inflated.capacity() == 0); // what was inflated is not kept
}

SCENARIO("an aggregate of too many empty user records is corrupt", "[kcl][kpl][limits]") {
  for (auto m : {kpl::magic::erlmld_plain, kpl::magic::erlmld_deflated}) {
    kpl::aggregator agg;
    for (int i = 0; i < 200'001; ++i)
      agg.add("k", "");
    const auto bytes = agg.build(m);
    const auto r = kpl::unpack(bytes);
    CHECK(r.what == kind::corrupt);
    CHECK(r.why == "the aggregate holds more than 200000 user records (max_user_records)");
    CHECK(r.records.empty());
  }
}

SCENARIO("the limits are inclusive: an aggregate exactly at them unpacks", "[kcl][kpl][limits]") {
  const auto bytes = deflated_aggregate(10, 100);
  const auto whole = kpl::unpack(bytes);
  REQUIRE(whole.what == kind::aggregate);
  kpl::unpack_limits at;
  at.max_inflated_bytes = whole.inflated.size();
  at.max_user_records = 10;
  CHECK(kpl::unpack(bytes, true, at).records.size() == 10);
  auto below = at;
  below.max_inflated_bytes -= 1;
  CHECK(kpl::unpack(bytes, true, below).why
        == fmt::format("the compressed aggregate inflates past {} bytes (max_inflated_bytes)",
                       below.max_inflated_bytes));
  below = at;
  below.max_user_records = 9;
  CHECK(kpl::unpack(bytes, true, below).why
        == "the aggregate holds more than 9 user records (max_user_records)");
}

SCENARIO("limits as large as a size_t goes mean no limit", "[kcl][kpl][limits]") {
  const auto bytes = deflated_aggregate(3, 100'000);
  constexpr auto all = std::numeric_limits<std::size_t>::max();
  kpl::unpack_limits none;
  none.max_inflated_bytes = none.max_inflated_bytes_per_call = all;
  none.max_user_records = none.max_user_records_per_call = all;
  CHECK(kpl::unpack(bytes, true, none).records.size() == 3);
}

SCENARIO("inflating stops at the cap instead of inflating everything first", "[kcl][kpl][limits]") {
  // A zlib stream cut in half inflates some 50 KB and then fails: a reader that inflated it all
  // before looking at the cap would call it broken, not too big.
  const auto bytes = deflated_aggregate(1, 100'000);
  auto cut = bytes.substr(0, bytes.size() / 2);
  kpl::unpack_limits small;
  small.max_inflated_bytes = 1000;
  CHECK(kpl::unpack(cut).why == "the compressed aggregate does not inflate");
  CHECK(kpl::unpack(cut, true, small).why
        == "the compressed aggregate inflates past 1000 bytes (max_inflated_bytes)");
}

SCENARIO("one unpack_all call has a budget its aggregates share", "[kcl][kpl][limits]") {
  const auto bytes = deflated_aggregate(10, 100); // about 1.1 KB inflated, ten user records
  const std::vector<std::string_view> views(5, bytes);
  const auto inflated_size = kpl::unpack(bytes).inflated.size();
  std::vector<kpl::unpack_result> out;
  GIVEN("room for the inflated bytes of two and a half") {
    kpl::unpack_limits l;
    l.max_inflated_bytes_per_call = inflated_size * 5 / 2;
    kpl::unpack_all(views.data(), views.size(), true, out, l);
    CHECK(out[0].what == kind::aggregate);
    CHECK(out[1].what == kind::aggregate);
    for (std::size_t i = 2; i < 5; ++i) {
      CHECK(out[i].what == kind::corrupt);
      CHECK_THAT(out[i].why, Catch::Matchers::EndsWith("(max_inflated_bytes_per_call)"));
    }
  }
  GIVEN("room for the user records of three") {
    kpl::unpack_limits l;
    l.max_user_records_per_call = 30;
    kpl::unpack_all(views.data(), views.size(), true, out, l);
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(out[i].records.size() == 10);
    for (std::size_t i = 3; i < 5; ++i)
      CHECK(out[i].why
            == "the aggregate holds more than 0 user records (max_user_records_per_call)");
  }
}
