// The error bridge (actors/messages.hpp): shardflow::error <-> caf::error, exception handlers, and
// how CAF renders our errors once `configure` registered the category.
#include <shardflow/actors/messages.hpp>

#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "tests/support/deterministic_fixture.hpp"

using namespace shardflow;

namespace {

caf::error converted(std::exception_ptr eptr) {
  return error_from(std::move(eptr));
}

template <class E>
caf::error thrown(E e) {
  try {
    throw e;
  } catch (...) {
    return converted(std::current_exception());
  }
}

} // namespace

SCENARIO("every shardflow code survives the trip through a caf::error", "[actors][messages]") {
  int codes = 0;
  for (int i = 1; i < 256; ++i) {
    const auto code = static_cast<errc>(i);
    if (std::string{to_string(code)} == "unknown")
      continue; // not a code
    ++codes;
    auto err = make_error(code, "text " + std::to_string(i));
    INFO(to_string(code));
    CHECK(code_of(err) == code);
    CHECK(text_of(err) == "text " + std::to_string(i));
  }
  CHECK(codes >= 25); // the enum has codes in every group
}

SCENARIO("an error of another category has no shardflow code", "[actors][messages]") {
  CHECK(code_of(caf::make_error(caf::sec::runtime_error, "x")) == errc::none);
  CHECK(code_of(caf::error{}) == errc::none);
  // CAF's system category uses small numbers too: the category decides, not the number.
  const auto same_number = static_cast<caf::sec>(static_cast<std::uint8_t>(errc::unknown_token));
  CHECK(code_of(caf::make_error(same_number)) == errc::none);
}

SCENARIO("a thrown shardflow::error keeps its code and its text", "[actors][messages]") {
  auto err = thrown(error{errc::io_failed, "out/s1.ndjson: write failed: no space left"});
  CHECK(code_of(err) == errc::io_failed);
  CHECK(text_of(err) == "out/s1.ndjson: write failed: no space left");
}

SCENARIO("another exception becomes a runtime error that keeps what()", "[actors][messages]") {
  auto err = thrown(std::out_of_range{"index 7 of 3"});
  CHECK(code_of(err) == errc::none);
  CHECK(err == caf::sec::runtime_error);
  CHECK(text_of(err) == "index 7 of 3");
  auto odd = thrown(42);
  CHECK(odd == caf::sec::runtime_error);
  CHECK(text_of(odd) == "a non-standard exception");
}

SCENARIO("text_of falls back to CAF's rendering for errors without a text", "[actors][messages]") {
  auto err = caf::make_error(caf::sec::request_timeout);
  CHECK(text_of(err) == caf::to_string(err));
  CHECK_FALSE(text_of(err).empty());
  CHECK(text_of(caf::error{}) == caf::to_string(caf::error{})); // no error: no crash either
}

SCENARIO_METHOD(testing::deterministic_fixture,
                "a configured actor system renders shardflow errors with their name and text",
                "[actors][messages]") {
  CHECK(sys.render(make_error(errc::stale_generation, "incarnation 1 refused"))
        == "shardflow: stale_generation: incarnation 1 refused");
  CHECK(sys.render(make_error(errc::duplicate_token)) == "shardflow: duplicate_token");
}

SCENARIO_METHOD(testing::deterministic_fixture,
                "an actor with the exception handler exits with the thrown error",
                "[actors][messages]") {
  auto a = spawn_fn([](caf::event_based_actor* self) -> caf::behavior {
    self->set_exception_handler(
      [](caf::scheduled_actor*, std::exception_ptr& eptr) { return error_from(eptr); });
    return {
      [](caf::ok_atom) {
        throw error{errc::watchdog_timeout, "shard a: no records for 5 ms"};
      },
    };
  });
  caf::anon_send(a, caf::ok_atom::value);
  caf::error reason;
  CHECK(is_dead(a, &reason));
  CHECK(code_of(reason) == errc::watchdog_timeout);
  CHECK(text_of(reason) == "shard a: no records for 5 ms");
}

SCENARIO("error_of keeps a shardflow error's code and text, and gives others the fallback",
         "[actors][messages]") {
  auto ours = error_of(make_error(errc::bad_input, "s/shard-00002.ndjson: no such file"),
                       errc::start_failed);
  CHECK(ours.code() == errc::bad_input);
  CHECK(std::string{ours.what()} == "s/shard-00002.ndjson: no such file");
  auto theirs = error_of(caf::make_error(caf::sec::request_receiver_down), errc::start_failed);
  CHECK(theirs.code() == errc::start_failed);
  CHECK(!std::string{theirs.what()}.empty());
}
