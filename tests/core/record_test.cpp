// Tests of core/record.hpp: batches share their records, slices stay in bounds, payload bytes.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <shardflow/core/record.hpp>

using namespace shardflow;

namespace {

record_batch batch_of(std::vector<std::string> data) {
  std::vector<stream_record> xs(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    xs[i].partition_key = "k";
    xs[i].data = data[i];
    xs[i].sequence.base = sequence_base{i};
  }
  return record_batch{std::move(xs)};
}

} // namespace

SCENARIO("copies and slices of a batch share its records", "[core][record]") {
  auto b = batch_of({"a", "bb", "ccc", "dddd"});
  auto copy = b;
  CHECK(copy.begin() == b.begin());
  auto mid = b.slice(1, 2);
  REQUIRE(mid.size() == 2);
  CHECK(&mid[0] == &b[1]);
  CHECK(mid.back().data == "ccc");
}

SCENARIO("a slice never reaches past its batch", "[core][record]") {
  auto b = batch_of({"a", "bb", "ccc"});
  CHECK(b.slice(2, 10).size() == 1);
  CHECK(b.slice(3, 1).empty());
  CHECK(b.slice(7, 1).empty());
  CHECK(b.slice(1, 2).slice(1, 5).back().data == "ccc");
  record_batch none;
  CHECK(none.empty());
  CHECK(none.begin() == none.end());
}

SCENARIO("payload bytes count keys and data", "[core][record]") {
  auto b = batch_of({"a", "bb", "ccc"});
  CHECK(payload_bytes(b[0]) == 2);
  CHECK(payload_bytes(b) == 3 + 6);
  CHECK(payload_bytes(b.slice(1, 1)) == 3);
  CHECK(to_string(checkpoint{}) == "latest");
}

SCENARIO("a batch made from a shared vector shares it, and its owner sees when it is alone again",
         "[core][record]") {
  auto xs = std::make_shared<std::vector<stream_record>>(3);
  (*xs)[2].data = "c";
  {
    record_batch b{std::shared_ptr<const std::vector<stream_record>>{xs}};
    CHECK(b.size() == 3);
    CHECK(&b[0] == xs->data());
    CHECK(b.back().data == "c");
    const auto s = b.slice(1, 5);
    CHECK(s.size() == 2);
    CHECK(xs.use_count() == 3); // the owner, the batch and its slice
  }
  CHECK(xs.use_count() == 1); // no batch is left: the owner may refill the vector
}

SCENARIO("a batch's payload bytes, counted once when it is made, hold for every slice of it",
         "[core][record]") {
  const auto b = batch_of({"a", "bb", "cccc", "dddddddd"}); // keys "k": 2 + 3 + 5 + 9 bytes
  CHECK(payload_bytes(b) == 19);
  CHECK(payload_bytes(b.slice(0, 4)) == 19);
  CHECK(payload_bytes(b.slice(0, 2)) == 5);  // starts where the batch does, ends before it
  CHECK(payload_bytes(b.slice(2, 2)) == 14); // ends where the batch does
  CHECK(payload_bytes(b.slice(1, 2)) == 8);
  CHECK(payload_bytes(b.slice(1, 2).slice(1, 1)) == 5);
  CHECK(payload_bytes(b.slice(4, 1)) == 0);
  CHECK(payload_bytes(record_batch{}) == 0);
  CHECK(payload_bytes(record_batch{std::vector<stream_record>{}}) == 0);
  auto shared = std::make_shared<const std::vector<stream_record>>(
    std::vector<stream_record>{b[0], b[3]});
  CHECK(payload_bytes(record_batch{shared}) == 11); // the shared-vector constructor counts too
}
