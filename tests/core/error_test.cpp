// Tests of core/error.hpp: every code has one name and one group, and the groups hold the codes
// their comments promise.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include <shardflow/core/error.hpp>

using namespace shardflow;

SCENARIO("every error code has a name of its own and a group", "[core][error]") {
  std::set<std::string> names;
  int codes = 0;
  for (int i = 0; i < 256; ++i) {
    auto code = static_cast<errc>(i);
    std::string name = to_string(code);
    if (name == "unknown")
      continue;
    ++codes;
    CHECK(names.insert(name).second);
    CHECK(std::string{to_string(group_of(code))} != "unknown");
  }
  CHECK(codes == static_cast<int>(names.size()));
  CHECK(codes >= 25); // the loop found the codes (28 when this was written)
}

SCENARIO("the groups say who has to act", "[core][error]") {
  CHECK(group_of(errc::none) == errc_group::none);
  CHECK(group_of(errc::flusher_failed) == errc_group::contract);
  CHECK(group_of(errc::duplicate_token) == errc_group::contract);
  CHECK(group_of(errc::watchdog_timeout) == errc_group::contract);
  CHECK(group_of(errc::bad_child_spec) == errc_group::supervision);
  CHECK(group_of(errc::restart_limit_reached) == errc_group::supervision);
  CHECK(group_of(errc::unknown_shard) == errc_group::runtime);
  CHECK(group_of(errc::runtime_ended) == errc_group::runtime);
  CHECK(group_of(errc::stale_generation) == errc_group::store);
  CHECK(group_of(errc::shard_owned) == errc_group::store);
  CHECK(group_of(errc::bad_input) == errc_group::input);
  CHECK(group_of(errc::bad_sequence_number) == errc_group::input);
  CHECK(group_of(errc::io_failed) == errc_group::io);
  CHECK(std::string{to_string(errc_group::io)} == "io");
}

SCENARIO("an error keeps its code and its message", "[core][error]") {
  error e{errc::io_failed, "out/0.ndjson: No space left on device"};
  CHECK(e.code() == errc::io_failed);
  CHECK(std::string{e.what()} == "out/0.ndjson: No space left on device");
}
