#include "adapters/mld_protocol.hpp"

#include <catch2/catch.hpp>

using namespace shardflow::mld;

SCENARIO("daemon messages of every generation decode", "[adapters][mld]") {
  message_parser parser;
  message m;
  REQUIRE(parser.parse(R"({"action":"initialize","shardId":"s-1","sequenceNumber":null,"subSequenceNumber":null})", m).empty());
  CHECK(m.what == message::kind::initialize);
  CHECK(m.has_sequence_key); // v2 fields even when null
  CHECK_FALSE(m.sequence_number);
  REQUIRE(parser.parse(R"({"action":"initialize","shardId":"s-1"})", m).empty());
  CHECK_FALSE(m.has_sequence_key); // KCL <= 1.7.1
  REQUIRE(parser.parse(R"({"action":"processRecords","millisBehindLatest":7,"records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"123","approximateArrivalTimestamp":{"epochSecond":2,"nano":3000000},"subSequenceNumber":4,"action":"record"}]})", m).empty());
  REQUIRE(m.records.size() == 1);
  CHECK(m.millis_behind_latest == 7);
  CHECK(m.records[0].arrival_ms == 2003);
  CHECK(m.records[0].sub_sequence_number == 4u);
  REQUIRE(parser.parse(R"({"action":"shutdown","reason":"ZOMBIE"})", m).empty());
  CHECK(m.reason == "ZOMBIE");
  REQUIRE(parser.parse(R"({"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":0,"error":"ThrottlingException"})", m).empty());
  CHECK(m.error == std::string{"ThrottlingException"});
  CHECK_FALSE(parser.parse("not json", m).empty());
  CHECK(parser.parse(R"({"x":1})", m) == "no action");
}

SCENARIO("worker messages carry exactly the keys the daemon knows", "[adapters][mld]") {
  CHECK(status_line("processRecords") == R"({"action":"status","responseFor":"processRecords"})");
  CHECK(checkpoint_line(true, std::string{"42"}, 3u)
        == R"({"action":"checkpoint","sequenceNumber":"42","subSequenceNumber":3})");
  CHECK(checkpoint_line(true, std::nullopt, std::nullopt)
        == R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null})");
  CHECK(checkpoint_line(false, std::string{"42"}, 3u) == R"({"action":"checkpoint","checkpoint":"42"})");
  CHECK(checkpoint_line(false, std::nullopt, std::nullopt) == R"({"action":"checkpoint","checkpoint":null})");
}

