// Tests of core/result.hpp: a value or the reason there is none.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <shardflow/core/result.hpp>

using namespace shardflow;

namespace {

result<int> half(int x) {
  if (x % 2 != 0)
    return fail(std::to_string(x) + " is odd");
  return x / 2;
}

status even(int x) {
  if (x % 2 != 0)
    return fail("odd");
  return {};
}

} // namespace

SCENARIO("a result holds a value or the reason there is none", "[core][result]") {
  auto ok = half(8);
  REQUIRE(ok);
  CHECK(*ok == 4);
  CHECK(ok.error().empty());
  auto bad = half(7);
  CHECK_FALSE(bad);
  CHECK(bad.error() == "7 is odd");
}

SCENARIO("a result moves its value out, even one that cannot be copied", "[core][result]") {
  result<std::unique_ptr<int>> x{std::make_unique<int>(3)};
  REQUIRE(x);
  auto p = *std::move(x);
  REQUIRE(p);
  CHECK(*p == 3);
  result<std::string> s{std::string{"abc"}};
  CHECK(s->size() == 3);
}

SCENARIO("a status is success or a reason, and a failure always has one", "[core][result]") {
  CHECK(even(2));
  CHECK(even(2).error().empty());
  CHECK_FALSE(even(3));
  CHECK(even(3).error() == "odd");
  status empty_reason = fail("");
  CHECK_FALSE(empty_reason); // an empty reason still fails
  CHECK(empty_reason.error() == "failed");
}
