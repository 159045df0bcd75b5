#include <shardflow/kcl/mld_protocol.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace shardflow::mld;

SCENARIO("daemon messages of every generation decode", "[kcl][mld]") {
  message_parser parser;
  message m;
  REQUIRE(
    parser
      .parse(
        R"({"action":"initialize","shardId":"s-1","sequenceNumber":null,"subSequenceNumber":null})",
        m)
      .error()
      .empty());
  CHECK(m.what == message::kind::initialize);
  CHECK(m.has_sequence_key); // v2 fields even when null
  CHECK_FALSE(m.sequence_number);
  REQUIRE(parser.parse(R"({"action":"initialize","shardId":"s-1"})", m).error().empty());
  CHECK_FALSE(m.has_sequence_key); // KCL <= 1.7.1
  REQUIRE(
    parser
      .parse(
        R"({"action":"processRecords","millisBehindLatest":7,"records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"123","approximateArrivalTimestamp":{"epochSecond":2,"nano":3000000},"subSequenceNumber":4,"action":"record"}]})",
        m)
      .error()
      .empty());
  REQUIRE(m.records.size() == 1);
  CHECK(m.millis_behind_latest == 7);
  CHECK(m.records[0].arrival_ms == 2003);
  CHECK(m.records[0].sub_sequence_number == 4u);
  REQUIRE(parser.parse(R"({"action":"shutdown","reason":"ZOMBIE"})", m).error().empty());
  CHECK(m.reason == "ZOMBIE");
  REQUIRE(
    parser
      .parse(
        R"({"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":0,"error":"ThrottlingException"})",
        m)
      .error()
      .empty());
  CHECK(m.error == std::string{"ThrottlingException"});
  CHECK_FALSE(parser.parse("not json", m).error().empty());
  CHECK(parser.parse(R"({"x":1})", m).error() == "no action");
}

SCENARIO("a line whose action is missing or not a string names nothing to answer", "[kcl][mld]") {
  message_parser parser;
  message m;
  const std::vector<std::pair<std::string, std::string>> lines = {
    {R"({"x":1})", "no action"},
    {R"({"action":null,"records":[]})", "no action"},
    {R"({"action":7})", "an action that is not a string (a number)"},
    {R"({"action":{"name":"processRecords"}})", "an action that is not a string (an object)"},
    {R"({"action":["status"]})", "an action that is not a string (an array)"},
    {R"({"action":true})", "an action that is not a string (a boolean)"},
  };
  for (const auto& [line, why] : lines) {
    CHECK(parser.parse(line, m).error() == why);
    CHECK(m.action.empty()); // the caller may ignore it: there is nothing it could acknowledge
  }
}

SCENARIO("worker messages carry exactly the keys the daemon knows", "[kcl][mld]") {
  CHECK(status_line("processRecords") == R"({"action":"status","responseFor":"processRecords"})");
  CHECK(checkpoint_line(true, std::string{"42"}, 3u)
        == R"({"action":"checkpoint","sequenceNumber":"42","subSequenceNumber":3})");
  CHECK(checkpoint_line(true, std::nullopt, std::nullopt)
        == R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null})");
  CHECK(checkpoint_line(false, std::string{"42"}, 3u)
        == R"({"action":"checkpoint","checkpoint":"42"})");
  CHECK(checkpoint_line(false, std::nullopt, std::nullopt)
        == R"({"action":"checkpoint","checkpoint":null})");
}

SCENARIO("a number beyond 64 bits in an optional field makes that field absent", "[kcl][mld]") {
  message_parser parser;
  message m;
  REQUIRE(
    parser
      .parse(
        R"({"action":"processRecords","millisBehindLatest":99999999999999999999,"records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"123","approximateArrivalTimestamp":18446744073709551616,"subSequenceNumber":0,"action":"record"}]})",
        m)
      .error()
    == "");
  CHECK(m.what == message::kind::process_records);
  CHECK_FALSE(m.millis_behind_latest);
  REQUIRE(m.records.size() == 1);
  CHECK_FALSE(m.records[0].arrival_ms);
  CHECK(m.records[0].sub_sequence_number == 0u);
  CHECK(m.records[0].sequence_number == "123");
}

SCENARIO("an arrival time whose milliseconds overflow is no arrival time", "[kcl][mld]") {
  message_parser parser;
  message m;
  REQUIRE(
    parser
      .parse(
        R"({"action":"processRecords","records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"1","approximateArrivalTimestamp":{"epochSecond":17000000000000000,"nano":0},"subSequenceNumber":0}]})",
        m)
      .error()
      .empty());
  REQUIRE(m.records.size() == 1);
  CHECK_FALSE(m.records[0].arrival_ms);
  REQUIRE(
    parser
      .parse(
        R"({"action":"processRecords","records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"1","approximateArrivalTimestamp":{"epochSecond":1700000000,"nano":5000000},"subSequenceNumber":0}]})",
        m)
      .error()
      .empty());
  CHECK(m.records[0].arrival_ms == 1700000000005);
  REQUIRE(
    parser
      .parse(
        R"({"action":"processRecords","records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"1","approximateArrivalTimestamp":{"epochSecond":1,"nano":-5},"subSequenceNumber":0}]})",
        m)
      .error()
      .empty());
  CHECK_FALSE(m.records[0].arrival_ms);
}

SCENARIO("an undecodable line gives the real reason and names the action it carries",
         "[kcl][mld]") {
  message_parser parser;
  WHEN("the line holds invalid UTF-8") {
    message m;
    const std::string line = "{\"action\":\"processRecords\",\"records\":[{\"data\":\"aGk=\","
                             "\"partitionKey\":\"\xff\",\"sequenceNumber\":\"1\"}]}";
    const auto why = parser.parse(line, m).error();
    CHECK(why == "not JSON: invalid UTF-8 at offset 69");
    CHECK(m.action == "processRecords");
    CHECK(m.what == message::kind::process_records);
  }
  WHEN("the object is followed by more text") {
    message m;
    const auto why = parser.parse(R"({"action":"shutdown","reason":"ZOMBIE"} {"x":1})", m).error();
    CHECK(why == "not JSON: text after the JSON object at offset 40");
    CHECK(m.action == "shutdown");
  }
  WHEN("the records are nested deeper than the parser allows") {
    message m;
    const std::string line = R"({"action":"processRecords","records":[)" + std::string(1100, '[')
                             + std::string(1100, ']') + "]}";
    CHECK(parser.parse(line, m).error() == "not JSON: nested deeper than 1024 levels");
    CHECK(m.action == "processRecords");
  }
  WHEN("the top-level action comes after strings and records that mention one") {
    message m;
    CHECK_FALSE(
      parser
        .parse(
          R"({ "note" : "say \"action\":\"x\"", "records":[{"action":"record"}], "action" : "leaseLost" ,})",
          m)
        .error()
        .empty());
    CHECK(m.action == "leaseLost");
    CHECK(m.what == message::kind::lease_lost);
  }
  WHEN("the action is only that of a record inside") {
    message m;
    CHECK_FALSE(parser.parse(R"({"records":[{"action":"record"}] oops)", m).error().empty());
    CHECK(m.action.empty());
  }
  WHEN("the line is JSON but not an object") {
    message m;
    CHECK(parser.parse(R"(["action","processRecords"])", m).error()
          == "not a JSON object (an array)");
    CHECK(m.action.empty());
  }
  WHEN("a processRecords line has no records array") {
    message m;
    CHECK(parser.parse(R"({"action":"processRecords","records":7})", m).error()
          == "a processRecords message without a records array");
    CHECK(m.action == "processRecords");
  }
}

SCENARIO("a checkpoint reply's error: empty is none, any other JSON value is its text",
         "[kcl][mld]") {
  message_parser parser;
  message m;
  REQUIRE(
    parser
      .parse(R"({"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":0,"error":""})", m)
      .error()
      .empty());
  CHECK_FALSE(m.error);
  REQUIRE(
    parser
      .parse(R"({"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":0,"error":42})", m)
      .error()
      .empty());
  CHECK(m.error == std::string{"42"});
}

namespace {

std::vector<std::string> corpus(const char* name) {
  std::vector<std::string> lines;
  const auto dir = std::filesystem::path{SHARDFLOW_FUZZ_CORPUS} / name;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in{entry.path(), std::ios::binary};
    lines.emplace_back(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Everything a reading yields, owned (the records' views die with the next parse).
std::string describe(const shardflow::status& st, const message& m) {
  std::ostringstream out;
  out << "error=" << st.error() << "|action=" << m.action << "|what=" << static_cast<int>(m.what)
      << "|shard=" << m.shard_id << "|v2=" << m.has_sequence_key
      << "|seq=" << m.sequence_number.value_or("-") << "|sub="
      << (m.sub_sequence_number ? std::to_string(*m.sub_sequence_number) : "-") << "|millis="
      << (m.millis_behind_latest ? std::to_string(*m.millis_behind_latest) : "-")
      << "|reason=" << m.reason << "|err=" << m.error.value_or("-")
      << "|echo_sub=" << m.echo_sub.value_or("-") << "|echo=" << m.echo_checkpoint.value_or("-")
      << "|records=" << m.records.size();
  for (const auto& r : m.records)
    out << "\n  data=" << (r.data_null ? "null" : std::string{r.data_base64})
        << " pk=" << r.partition_key << " seq=" << r.sequence_number
        << " sub=" << (r.sub_sequence_number ? std::to_string(*r.sub_sequence_number) : "-")
        << " arrival=" << (r.arrival_ms ? std::to_string(*r.arrival_ms) : "-")
        << " problem=" << r.problem << " raw=" << r.raw;
  return out.str();
}

// A line changed the way corruption or a fuzzer would: a byte replaced, removed or inserted, a
// piece repeated, the end cut off.
std::string mutate(std::string line, std::mt19937& rng) {
  static constexpr char bytes[] = {'"', '\\', '{', '}', '[', ']', ':', ',', '0', '1', '9', '-', '.',
                                   'e', 'n', 't', 'f', 'u', ' ', '\x01', '\xff', '\xc3', 'a'};
  const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>{0, n}(rng); };
  if (line.empty())
    return std::string(1, bytes[pick(sizeof bytes - 1)]);
  const auto at = pick(line.size() - 1);
  switch (pick(4)) {
    case 0:
      line[at] = bytes[pick(sizeof bytes - 1)];
      break;
    case 1:
      line.erase(at, 1);
      break;
    case 2:
      line.insert(at, 1, bytes[pick(sizeof bytes - 1)]);
      break;
    case 3:
      line.insert(at, line.substr(at, pick(40)));
      break;
    default:
      line.resize(at);
      break;
  }
  return line;
}

// processRecords lines of the kinds the fast path must decline or read exactly like the DOM.
std::vector<std::string> edge_lines() {
  const std::string head = R"({"action":"processRecords","records":[)";
  const std::string rec = R"({"data":"eA==","partitionKey":"p","sequenceNumber":"12","subSequenceNumber":0,"approximateArrivalTimestamp":1700000000000,"action":"record"})";
  std::vector<std::string> lines = {
    head + rec + "]}",
    head + rec + "," + rec + R"(],"millisBehindLatest":17})",
    head + "]}",
    head + "{}]}",
    head + rec + "]} ",
    head + rec + "]}x",
    head + rec + "]}}",
    head + rec + "],}",
    head + rec + rec + "]}",
    head + R"({"data":"e\u0041==","sequenceNumber":"1"}]})",
    head + R"({"d\u0061ta":"eA==","sequenceNumber":"1"}]})",
    head + R"({"data":"eA==","sequenceNumber":"1","x":"\q"}]})",
    head + R"({"data":null,"partitionKey":null,"sequenceNumber":"1","subSequenceNumber":null,"approximateArrivalTimestamp":null}]})",
    head + R"({"data":"a","data":null,"partitionKey":"p","partitionKey":null,"sequenceNumber":"1","sequenceNumber":"2"}]})",
    head + R"({"data":7,"sequenceNumber":"1"}]})",
    head + R"({"sequenceNumber":1}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":-0}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":-1}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":"5"}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":01}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":1.0}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":1e2}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":17000?0000000}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":1700000;000000}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":1234567>}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":12345678/}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":1234567890123456789}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":12345678901234567890}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":9223372036854775807}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":9223372036854775808}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":18446744073709551616}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":{"epochSecond":1,"nano":2}}]})",
    head + R"({"sequenceNumber":"1","x":[1,2],"y":{"z":true},"t":true,"f":false,"n":null}]})",
    head + R"({"sequenceNumber":"1","t":tru}]})",
    head + R"({"sequenceNumber":"1","data":nul}]})",
    head + R"({"sequenceNumber":"1","partitionKey":nulx}]})",
    head + R"({"sequenceNumber":"1","subSequenceNumber":nul}]})",
    head + R"({"sequenceNumber":"1","approximateArrivalTimestamp":n}]})",
    head + R"({"sequenceNumber":"1","t":nul}]})",
    head + R"({"sequenceNumber":"1","t":null1}]})",
    head + R"({"sequenceNumber":"1" "t":1}]})",
    head + R"({"sequenceNumber":"1"x}]})",
    head + R"({"sequenceNumber":"1",}]})",
    head + "7]}",
    head + "null]}",
    head + R"({"sequenceNumber":"1\u0000"}]})",
    head + "{\"sequenceNumber\":\"1\x01\"}]}",
    head + "{\"sequenceNumber\":\"\xff\"}]}",
    head + R"({"sequenceNumber":"1"}],"millisBehindLatest":-5})",
    head + R"({"sequenceNumber":"1"}],"millisBehindLatest":"5"})",
    head + R"({"sequenceNumber":"1"}],"millisBehindLatest":null})",
    head + R"({"sequenceNumber":"1"}],"records":[]})",
    head + R"({"sequenceNumber":"1"}],"action":"shutdown"})",
    head + R"({"sequenceNumber":"1"}],"other":"x\"y"})",
    R"({"action":"processRecords","records":7})",
    R"({"action":"processRecords"})",
    R"({"action":"processRecords"   ,  "records" : [ { "sequenceNumber" : "1" , "data" : "eA==" } ] } )",
    R"({"action":"processRecordsX","records":[]})",
  };
  std::string big = head;
  for (int i = 0; i < 300; ++i)
    big += (i ? "," : "") + rec;
  lines.push_back(big + "]}");
  return lines;
}

} // namespace

SCENARIO("the processRecords fast path reads every line as the DOM reading does, or declines it",
         "[kcl][mld]") {
  if (!message_parser::fast_path_available())
    WARN("this CPU cannot run the fast path: only the DOM reading is compared with itself");
  auto lines = corpus("mld_parser");
  const auto from_corpus = lines.size();
  REQUIRE(from_corpus >= 20); // the corpus was found (SHARDFLOW_FUZZ_CORPUS)
  for (auto& l : edge_lines())
    lines.push_back(std::move(l));
  std::mt19937 rng{20261202};
  const auto originals = lines.size();
  for (std::size_t i = 0; i < originals; ++i) {
    auto line = lines[i];
    for (int k = 0; k < 60; ++k) {
      line = k % 4 == 0 ? mutate(lines[i], rng) : mutate(line, rng);
      lines.push_back(line);
    }
  }
  message_parser fast;
  message_parser dom{message_parser_config{false}};
  message_parser in_place;
  std::size_t compared = 0;
  for (const auto& line : lines) {
    message a;
    const auto sa = fast.parse(line, a);
    const auto da = describe(sa, a);
    message b;
    const auto db = describe(dom.parse(line, b), b);
    // In place, with what a parser reading past the line would trip on after it.
    std::string padded = line + std::string(32, '"') + std::string(32, '}');
    message c;
    const auto dc = describe(in_place.parse(std::string_view{padded.data(), line.size()}, c, true), c);
    INFO("line: " << line);
    REQUIRE(da == db);
    REQUIRE(dc == db);
    ++compared;
  }
  CHECK(compared == lines.size());
  if (message_parser::fast_path_available()) {
    // Both sides of the fast path are exercised: lines it vouched for and lines it declined.
    CHECK(fast.fast_lines() >= 200);
    CHECK(fast.fast_lines() < lines.size() / 2);
    CHECK(in_place.fast_lines() == fast.fast_lines());
  }
  CHECK(dom.fast_lines() == 0);
}
