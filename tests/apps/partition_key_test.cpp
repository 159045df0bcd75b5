// Tests of apps/shardflow/partition_key.hpp: one JSON parsing for `put --key` and `kpl-agg --key`.
#include "apps/shardflow/partition_key.hpp"

#include <catch2/catch.hpp>

using namespace shardflow::cli;

SCENARIO("the partition key is the field's value whatever the spacing of the JSON",
         "[apps][partition_key]") {
  CHECK(*partition_key_of(R"({"user": 17})", "user") == "17");
  CHECK(*partition_key_of(R"({"user":17})", "user") == "17");
  CHECK(*partition_key_of(R"({ "user" : "ann" , "n": 1 })", "user") == "ann");
  CHECK(*partition_key_of(R"({"user":{"id": 3}})", "user") == R"({"id":3})");
  CHECK(*partition_key_of(R"({"user": 17})", "") == R"({"user": 17})");
}

SCENARIO("a line without the field, or not a JSON object, has no partition key",
         "[apps][partition_key]") {
  CHECK(partition_key_of(R"({"name": 17})", "user").error()
        == "no field \"user\" for the partition key");
  CHECK(partition_key_of("user=17", "user").error() == "not a JSON object");
  CHECK(partition_key_of("[1,2]", "").error() == "not a JSON object");
}
