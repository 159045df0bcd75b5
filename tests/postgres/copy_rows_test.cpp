#include <shardflow/postgres/copy_rows.hpp>

#include <string>

#include <catch2/catch.hpp>

#include "tests/support/thrown_code.hpp"

#include <shardflow/core/error.hpp>

using namespace shardflow;
using namespace shardflow::postgres;
using shardflow::testing::thrown_code;

namespace {

stream_record rec(std::uint64_t seq, std::string data) {
  stream_record x;
  x.partition_key = "k\t1";
  x.data = std::move(data);
  x.sequence.base = sequence_base{seq};
  return x;
}

std::string hex(const std::string& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xF]);
  }
  return out;
}

} // namespace

SCENARIO("--pg-columns names roles and their columns, and refuses what it cannot use",
         "[postgres]") {
  auto cols = parse_columns("sequence=seq_no,data,shard");
  REQUIRE(cols.size() == 3);
  CHECK(cols[0].role == column_role::sequence);
  CHECK(cols[0].name == "seq_no");
  CHECK(cols[1].name == "data");
  CHECK(column_list(cols) == "seq_no, data, shard");
  CHECK(parse_columns(default_columns_text()).size() == 8);
  for (const char* bad : {"", "stream,", "sequnce", "shard=a b", "shard,shard", "shard=x,stream=x",
                          "data=", "stream;drop"})
    CHECK(thrown_code([&] { parse_columns(bad); }) == errc::bad_input);
  CHECK_THROWS_WITH(parse_columns("stream,sequnce"),
                    Catch::Contains("no column role \"sequnce\"") && Catch::Contains("data_raw"));
}

SCENARIO("text rows follow the columns, escape what COPY reads specially, JSON or not",
         "[postgres]") {
  copy_rows rows{parse_columns("partition_key,sequence,data,data_raw,stream"), data_type::jsonb,
                 copy_format::text, "st\\ream", "s"};
  std::string out;
  rows.append(out, rec(42, "{\"a\":\"x\\ty\"}"));
  rows.append(out, rec(7, "not json\n"));
  CHECK(out
        == "k\\t1\t42\t{\"a\":\"x\\\\ty\"}\t\\N\tst\\\\ream\n"
           "k\\t1\t7\t\\N\t\\\\x6e6f74206a736f6e0a\tst\\\\ream\n");
  copy_rows as_text{parse_columns("data"), data_type::text, copy_format::text, "s", "s"};
  out.clear();
  as_text.append(out, rec(1, "{\"a\":1}\t"));
  CHECK(out == "{\"a\":1}\\t\n");
}

SCENARIO("binary rows: a field count, then each field's length and bytes", "[postgres]") {
  copy_rows rows{parse_columns("shard,sub_sequence,data,data_raw,arrival"), data_type::jsonb,
                 copy_format::binary, "st", "s1"};
  std::string out;
  auto x = rec(5, "[1]");
  x.sequence.sub = 3;
  x.arrival_ms = 946684800001; // 2000-01-01 00:00:00.001 UTC: 1,000 us after PostgreSQL's epoch
  rows.append(out, x);
  CHECK(hex(out)
        == "0005"                       // five fields
           "000000027331"               // shard "s1"
           "000000080000000000000003"   // sub_sequence 3
           "00000004015b315d"           // jsonb version 1, "[1]"
           "ffffffff"                   // data_raw NULL
           "0000000800000000000003e8"); // arrival
  CHECK(copy_header(copy_format::binary).size() == 19);
  CHECK(copy_trailer(copy_format::binary) == std::string("\xff\xff", 2));
  CHECK(copy_header(copy_format::text).empty());
}

SCENARIO("a binary numeric is base-10000 digits with their weight", "[postgres]") {
  auto numeric = [](std::string_view digits) {
    std::string out;
    append_binary_numeric(out, digits);
    return hex(out);
  };
  CHECK(numeric("0") == "0000000000000000");
  CHECK(numeric("000") == "0000000000000000");
  CHECK(numeric("7") == "00010000000000000007");
  CHECK(numeric("123456") == "0002000100000000000c0d80"); // 12 3456
  CHECK(numeric("00010000") == "00010001000000000001");   // 1 0000: the zero group dropped
  CHECK(numeric("49590338271490256608559692538361571095921575989136588898")
        == numeric("0049590338271490256608559692538361571095921575989136588898"));
}
