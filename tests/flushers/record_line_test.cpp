#include "flushers/record_line.hpp"

#include <catch2/catch.hpp>

using namespace shardflow;

SCENARIO("a record line round-trips keys, data and times", "[flushers][record_line]") {
  stream_record x;
  x.partition_key = "user \"17\"";
  x.data = std::string{"line\nwith\ttabs, \\ backslash, \x01 control and \xc3\xa9 utf-8"};
  x.arrival_ms = 1700000000123;
  std::string line;
  append_line(line, x);
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1); // one line, whatever the data holds
  stream_record y;
  line.pop_back();
  REQUIRE(parse_line(line, y).empty());
  CHECK(y.partition_key == x.partition_key);
  CHECK(y.data == x.data);
  CHECK(y.arrival_ms == x.arrival_ms);
  WHEN("the time is absent") {
    stream_record z;
    z.partition_key = "k";
    z.data = "d";
    std::string l;
    append_line(l, z);
    CHECK(l == "{\"k\":\"k\",\"d\":\"d\"}\n");
    stream_record w;
    w.arrival_ms = 5;
    REQUIRE(parse_line(l.substr(0, l.size() - 1), w).empty());
    CHECK_FALSE(w.arrival_ms);
  }
}

SCENARIO("a line that is not a record says why", "[flushers][record_line]") {
  stream_record x;
  CHECK(parse_line("not json", x) == "not a JSON object");
  CHECK(parse_line("[1,2]", x) == "not a JSON object");
  CHECK(parse_line(R"({"d":"x"})", x) == "no \"k\" (partition key)");
  CHECK(parse_line(R"({"k":"x"})", x) == "no \"d\" (data)");
  CHECK(parse_line(R"({"k":1,"d":"x"})", x) == "\"k\" (the partition key) is not a string");
  CHECK(parse_line(R"({"k":"a","d":"x","t":"soon"})", x)
        == "\"t\" (the arrival time) is not an integer");
  CHECK(parse_line(R"({"k":"a","extra":{"x":[1,2]},"d":"x"})", x).empty()); // unknown fields pass
  CHECK(x.data == "x");
}
