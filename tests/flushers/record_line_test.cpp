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

namespace {

// The escaping of append_json_string as it was written byte by byte before it went a block at a
// time: the reference the faster one must match bit for bit.
std::string reference_json_string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20)
      out += std::string{"\\u00"} + hex[c >> 4] + hex[c & 0xF];
    else
      out.push_back(ch);
  }
  return out + "\"";
}

} // namespace

SCENARIO("a JSON string is escaped exactly as the byte-by-byte reference does it",
         "[flushers][record_line]") {
  GIVEN("every single byte") {
    for (int c = 0; c < 256; ++c) {
      const std::string text(1, static_cast<char>(c));
      std::string out = "prefix";
      append_json_string(out, text);
      REQUIRE(out == "prefix" + reference_json_string(text));
    }
  }
  GIVEN("random strings of every length up to 100, dense and sparse in escapes") {
    std::mt19937 rng{11};
    const std::string alphabet = std::string{"ab\"\\\n\r\t\x01\x1f /\x7f\xc3\xa9", 15};
    for (int i = 0; i < 4000; ++i) {
      std::string text(static_cast<std::size_t>(i % 101), 'x');
      const auto density = rng() % 4; // 0: no escapes .. 3: mostly escapes
      for (auto& c : text)
        if (rng() % 4 < density)
          c = alphabet[rng() % alphabet.size()];
      std::string out;
      append_json_string(out, text);
      REQUIRE(out == reference_json_string(text));
    }
  }
  GIVEN("a long string of control characters (the output is six times the input)") {
    const std::string text(5000, '\x02');
    std::string out;
    append_json_string(out, text);
    CHECK(out == reference_json_string(text));
  }
}

SCENARIO("the fast path for plain lines reads what the full parser reads, and refuses the same",
         "[flushers][record_line]") {
  // parse_line reads lines shaped as append_line writes them without the full JSON parser; a line
  // with a leading space always goes to the full parser (which skips the space). Both must agree on
  // every line: accepted or not, and on the record.
  std::mt19937 rng{23};
  const std::vector<std::string> text = {
    "a",      "key-1",  "\\\"",         "\\\\",  "\\/",  "\\b",    "\\f",      "\\n",
    "\\r",    "\\t",    "\\u0041",      "\\u00e9", "\\ud83d\\ude00", "\\x", "\x01", "\t",
    "\xc3\xa9", "\xff", "\xc3",         "0123456789abcdef", "\"", "\\", "{}", " "};
  const std::vector<std::string> numbers = {"0",  "-",   "1700000000000", "01", "-0", "-5",
                                            "123456789012345678", "1234567890123456789",
                                            "999999999999999999", "1.5", "1e3", ""};
  const std::vector<std::string> noise = {"{", "}", "\"", ",", ":", " ", "\"k\"", "\"d\"",
                                          ",\"t\":1", ",\"b\":\"AA==\"", "\\", "\xff", "x"};
  auto string_of = [&] {
    std::string s;
    for (auto n = rng() % 6; n > 0; --n)
      s += text[rng() % text.size()];
    return s;
  };
  int fast_shaped = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string line = "{\"k\":\"" + string_of() + "\"";
    if (rng() % 2)
      line += ",\"t\":" + numbers[rng() % numbers.size()];
    line += ",\"d\":\"" + string_of() + "\"}";
    if (rng() % 4 == 0) { // break it somewhere
      const auto at = rng() % (line.size() + 1);
      if (rng() % 2)
        line.insert(at, noise[rng() % noise.size()]);
      else
        line.erase(at, 1 + rng() % 3);
    }
    stream_record fast;
    stream_record full;
    const auto a = parse_line(line, fast);
    const auto b = parse_line(" " + line, full);
    INFO("line: " << line);
    REQUIRE(static_cast<bool>(a) == static_cast<bool>(b));
    if (!a)
      continue;
    ++fast_shaped;
    CHECK(fast.partition_key == full.partition_key);
    CHECK(fast.data == full.data);
    CHECK(fast.arrival_ms == full.arrival_ms);
    CHECK(!fast.attributes);
  }
  CHECK(fast_shaped > 2000); // the generator reaches valid lines often enough to mean something
}
