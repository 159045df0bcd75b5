#include <shardflow/kcl/mld_protocol.hpp>

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
