#include <shardflow/core/restart_policy.hpp>

#include <catch2/catch.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;

} // namespace

SCENARIO("the restart decision follows OTP's table", "[actors][restart_policy]") {
  using d = restart_decision;
  CHECK(decide_restart(restart_type::permanent, exit_kind::normal) == d::restart);
  CHECK(decide_restart(restart_type::permanent, exit_kind::shutdown) == d::restart);
  CHECK(decide_restart(restart_type::permanent, exit_kind::abnormal) == d::restart);
  CHECK(decide_restart(restart_type::transient, exit_kind::normal) == d::keep);
  CHECK(decide_restart(restart_type::transient, exit_kind::shutdown) == d::keep);
  CHECK(decide_restart(restart_type::transient, exit_kind::abnormal) == d::restart);
  CHECK(decide_restart(restart_type::temporary, exit_kind::normal) == d::remove);
  CHECK(decide_restart(restart_type::temporary, exit_kind::abnormal) == d::remove);
}

SCENARIO("the intensity window allows at most intensity restarts per period",
         "[actors][restart_policy]") {
  GIVEN("intensity 2 and period 5 s") {
    restart_window w{2, 5s};
    CHECK(w.add(t0));
    CHECK(w.add(t0 + 1s));
    CHECK_FALSE(w.add(t0 + 2s));
  }
  GIVEN("a stamp exactly period seconds old") {
    restart_window w{1, 5s};
    CHECK(w.add(t0));
    THEN("it still counts: the window is inclusive") {
      CHECK_FALSE(w.add(t0 + 5s));
    }
  }
  GIVEN("whole-second granularity") {
    restart_window w{1, 5s};
    CHECK(w.add(t0 + 900ms));
    THEN("0.9 s and 5.1 s fall in the same window") {
      CHECK_FALSE(w.add(t0 + 5100ms));
    }
  }
  GIVEN("restarts spaced wider than the period") {
    restart_window w{1, 1s};
    for (int i = 0; i < 10; ++i)
      CHECK(w.add(t0 + i * 2100ms));
    CHECK(w.size() == 1);
  }
  GIVEN("intensity 0") {
    restart_window w{0, 5s};
    CHECK_FALSE(w.add(t0));
  }
}

SCENARIO("backoff doubles from min up to max and adds jitter after the cap",
         "[actors][restart_policy]") {
  backoff_spec b;
  b.min = 100ms;
  b.max = 1s;
  b.random_factor = 0.5;
  CHECK(backoff_delay(b, 0, 0.0) == 100ms);
  CHECK(backoff_delay(b, 1, 0.0) == 200ms);
  CHECK(backoff_delay(b, 3, 0.0) == 800ms);
  CHECK(backoff_delay(b, 4, 0.0) == 1s);
  CHECK(backoff_delay(b, 40, 0.0) == 1s);
  CHECK(backoff_delay(b, 4, 1.0) == 1500ms); // jitter may exceed max by random_factor
  CHECK(backoff_delay(b, 0, 0.5) == 125ms);
  b.min = 0ms;
  CHECK(backoff_delay(b, 5, 0.5) == 0ms); // disabled
}
