#include "apps/shardflow/exit_codes.hpp"

#include <catch2/catch.hpp>

#include "apps/shardflow/guarded.hpp"

using namespace shardflow;
using namespace shardflow::cli;

SCENARIO("exit codes follow the error's group: input is 3, I/O and everything else 1",
         "[apps][exit_codes]") {
  CHECK(exit_code_of(errc::none) == exit_ok);
  CHECK(exit_code_of(errc::bad_input) == exit_bad_input);
  CHECK(exit_code_of(errc::bad_sequence_number) == exit_bad_input);
  CHECK(exit_code_of(errc::shard_owned) == exit_owned);
  CHECK(exit_code_of(errc::stale_generation) == exit_failed);
  CHECK(exit_code_of(errc::io_failed) == exit_failed); // a full disk is not bad input
  CHECK(exit_code_of(errc::flusher_failed) == exit_failed);
  CHECK(exit_code_of(errc::restart_limit_reached) == exit_failed);
  CHECK(exit_code_of(errc::checkpoint_failed) == exit_failed);
  CHECK(exit_code_of(errc::start_failed) == exit_failed);
  CHECK(exit_code_of(error{errc::bad_input, "x"}) == exit_bad_input);
}

SCENARIO("guarded maps what a command throws to its exit code", "[apps][exit_codes]") {
  CHECK(guarded("test", [] { return 7; }) == 7);
  CHECK(guarded("test", []() -> int { usage("--x: bad"); }) == exit_usage);
  CHECK(guarded("test", []() -> int { throw error{errc::io_failed, "disk full"}; }) == exit_failed);
  CHECK(guarded("test",
                []() -> int {
                  throw error{errc::bad_input, "no stream"};
                })
        == exit_bad_input);
  CHECK(guarded("test", []() -> int { throw std::runtime_error{"other"}; }) == exit_failed);
}
