#include <shardflow/flushers/record_line.hpp>

#include <random>

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
  REQUIRE(parse_line(line, y));
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
    REQUIRE(parse_line(l.substr(0, l.size() - 1), w));
    CHECK_FALSE(w.arrival_ms);
  }
}

SCENARIO("a line that is not a record says why", "[flushers][record_line]") {
  stream_record x;
  CHECK_THAT(parse_line("not json", x).error(), Catch::StartsWith("not valid JSON"));
  CHECK(parse_line("[1,2]", x).error() == "not a JSON object");
  CHECK(parse_line(R"({"d":"x"})", x).error() == "no \"k\" (partition key)");
  CHECK(parse_line(R"({"k":"x"})", x).error() == "no \"d\" or \"b\" (data)");
  CHECK(parse_line(R"({"k":1,"d":"x"})", x).error() == "\"k\" (the partition key) is not a string");
  CHECK(parse_line(R"({"k":"a","d":"x","t":"soon"})", x).error()
        == "\"t\" (the arrival time) is not an integer");
  CHECK(parse_line(R"({"k":"a","extra":{"x":[1,2]},"d":"x"})", x)); // unknown fields pass
  CHECK(x.data == "x");
}

SCENARIO("a line must be one valid JSON object, unknown fields included",
         "[flushers][record_line]") {
  stream_record x;
  WHEN("a second record follows on the same line") {
    THEN("the line is bad input, not the first record") {
      CHECK_THAT(parse_line(R"({"k":"a","d":"one"}{"k":"b","d":"two"})", x).error(),
                 Catch::Contains("content after the JSON object at byte 20"));
      CHECK_THAT(parse_line(R"({"k":"a","d":"one"} x)", x).error(),
                 Catch::Contains("content after"));
    }
  }
  WHEN("an unknown field holds an invalid value") {
    CHECK_THAT(parse_line(R"({"k":"a","d":"x","z":tru})", x).error(),
               Catch::StartsWith("not valid JSON"));
    CHECK_THAT(parse_line(R"({"k":"a","d":"x","z":01})", x).error(),
               Catch::StartsWith("not valid JSON"));
    CHECK_THAT(parse_line(R"({"k":"a","d":"x","z":1e99999})", x).error(),
               Catch::StartsWith("not valid JSON"));
  }
  WHEN("the line is not valid UTF-8") {
    CHECK(parse_line("{\"k\":\"a\",\"z\":\"\xff\",\"d\":\"x\"}", x).error() == "not valid UTF-8");
  }
  WHEN("only whitespace follows the object") {
    CHECK(parse_line(R"({"k":"a","d":"x"}  )", x));
  }
}

SCENARIO("data that is not UTF-8 goes to \"b\" in base64 and comes back byte for byte",
         "[flushers][record_line]") {
  stream_record x;
  x.partition_key = "k";
  x.data = std::string{"\x00\xff\xfe binary \xc3", 12};
  std::string line;
  append_line(line, x);
  CHECK(line == "{\"k\":\"k\",\"b\":\"AP/+IGJpbmFyeSDD\"}\n");
  stream_record y;
  REQUIRE(parse_line(line.substr(0, line.size() - 1), y));
  CHECK(y.data == x.data);
  CHECK(parse_line(R"({"k":"k","b":"AP/+"})", y));
  CHECK(y.data == std::string{"\x00\xff\xfe", 3});
  CHECK(parse_line(R"({"k":"k","b":"AP/"})", y).error()
        == "\"b\" (the data in base64) is not standard padded base64");
  CHECK(parse_line(R"({"k":"k","b":"AP/+","d":"x"})", y).error()
        == "more than one of \"d\" and \"b\" (data): a record has exactly one");
  CHECK(parse_line(R"({"k":"k"})", y).error() == "no \"d\" or \"b\" (data)");
  GIVEN("random bytes of random lengths") {
    std::mt19937 rng{7};
    for (int i = 0; i < 2000; ++i) {
      stream_record r;
      r.partition_key = "p";
      r.data.resize(rng() % 64);
      for (auto& c : r.data)
        c = static_cast<char>(i % 2 ? rng() % 256 : rng() % 128); // odd: mostly not UTF-8
      std::string l;
      append_line(l, r);
      stream_record back;
      REQUIRE(parse_line(l.substr(0, l.size() - 1), back));
      REQUIRE(back.data == r.data);
    }
  }
}

SCENARIO("a partition key that is not UTF-8 goes to \"kb\" in base64 and comes back byte for byte",
         "[flushers][record_line]") {
  stream_record x;
  x.partition_key = std::string{"\xff\x00key", 5}; // a KPL user record's key is any bytes
  x.data = "d";
  std::string line;
  append_line(line, x);
  CHECK(line == "{\"kb\":\"/wBrZXk=\",\"d\":\"d\"}\n");
  stream_record y;
  REQUIRE(parse_line(line.substr(0, line.size() - 1), y));
  CHECK(y.partition_key == x.partition_key);
  CHECK(parse_line(R"({"kb":"/wB","d":"x"})", y).error()
        == "\"kb\" (the partition key in base64) is not standard padded base64");
  CHECK(parse_line(R"({"k":"a","kb":"YQ==","d":"x"})", y).error()
        == "more than one of \"k\" and \"kb\" (partition key): a record has exactly one");
  GIVEN("random keys and data") {
    std::mt19937 rng{11};
    for (int i = 0; i < 2000; ++i) {
      stream_record r;
      r.partition_key.resize(rng() % 16);
      r.data.resize(rng() % 16);
      for (auto& c : r.partition_key)
        c = static_cast<char>(rng() % 256);
      for (auto& c : r.data)
        c = static_cast<char>(rng() % 256);
      std::string l;
      append_line(l, r);
      stream_record back;
      REQUIRE(parse_line(l.substr(0, l.size() - 1), back));
      REQUIRE(back.partition_key == r.partition_key);
      REQUIRE(back.data == r.data);
    }
  }
}

SCENARIO("a long line parses, and short ones after it", "[flushers][record_line]") {
  stream_record x;
  x.partition_key = "k";
  x.data.assign(3 << 20, 'q'); // past the size whose parser buffers are kept
  std::string line;
  append_line(line, x);
  line.pop_back();
  stream_record y;
  REQUIRE(parse_line(line, y));
  CHECK(y.data == x.data);
  REQUIRE(parse_line(R"({"k":"a","d":"short"})", y));
  CHECK(y.data == "short");
  CHECK_THAT(parse_line(line + "x", y).error(), Catch::Contains("content after"));
}

SCENARIO("a record's attributes go in \"h\", in order, and come back byte for byte",
         "[flushers][record_line]") {
  stream_record x;
  x.partition_key = "k";
  x.data = "d";
  x.attributes = std::make_shared<record_attributes>(
    record_attributes{{"trace", "abc"}, {"bin\xff", std::string{"\x00\xfe", 2}}, {"trace", ""}});
  std::string line;
  append_line(line, x);
  CHECK(line
        == R"({"k":"k","h":[{"k":"trace","v":"abc"},{"kb":"Ymlu/w==","vb":"AP4="},)"
           R"({"k":"trace","v":""}],"d":"d"})"
           "\n");
  stream_record y;
  line.pop_back();
  REQUIRE(parse_line(line, y));
  REQUIRE(y.attributes);
  CHECK(*y.attributes == *x.attributes);
  WHEN("a line without \"h\" is parsed into the same record") {
    REQUIRE(parse_line(R"({"k":"k","d":"d"})", y));
    CHECK_FALSE(y.attributes); // none: a record without attributes pays one empty pointer
  }
  WHEN("\"h\" is empty") {
    REQUIRE(parse_line(R"({"k":"k","h":[],"d":"d"})", y));
    CHECK_FALSE(y.attributes);
  }
  WHEN("a record has an empty attribute list, it writes no \"h\"") {
    x.attributes = std::make_shared<record_attributes>();
    std::string l;
    append_line(l, x);
    CHECK(l == "{\"k\":\"k\",\"d\":\"d\"}\n");
  }
}

SCENARIO("attributes that are not a list of key/value objects say why", "[flushers][record_line]") {
  stream_record x;
  CHECK(parse_line(R"({"k":"a","h":{"x":"y"},"d":"x"})", x).error()
        == "\"h\" (the attributes) is not an array");
  CHECK(parse_line(R"({"k":"a","h":[{"k":"x","v":"y"},"z"],"d":"x"})", x).error()
        == "attribute 2 of \"h\" is not an object");
  CHECK(parse_line(R"({"k":"a","h":[{"k":"x"}],"d":"x"})", x).error()
        == "attribute 1 of \"h\" needs exactly one of \"k\" and \"kb\" (its key) and one of \"v\" "
           "and \"vb\" (its value)");
  CHECK(parse_line(R"({"k":"a","h":[{"k":"x","v":"y","vb":"eQ=="}],"d":"x"})", x).error()
        == "attribute 1 of \"h\" needs exactly one of \"k\" and \"kb\" (its key) and one of \"v\" "
           "and \"vb\" (its value)");
  CHECK(parse_line(R"({"k":"a","h":[{"k":1,"v":"y"}],"d":"x"})", x).error()
        == "attribute 1 of \"h\": \"k\" (its key) is not a string");
  CHECK(parse_line(R"({"k":"a","h":[{"k":"x","vb":"!"}],"d":"x"})", x).error()
        == "attribute 1 of \"h\": \"vb\" (its value in base64) is not standard padded base64");
}
