// Tests of the runtime (actors/runtime.hpp): outcomes a host can tell apart, errors that name the
// problem, and the blocking facade on a real scheduler (waits on observable state, with deadlines).
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/flusher.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

// Makes every record durable on each flush; throws from flush when `fail` is set.
class test_flusher final : public flusher {
public:
  explicit test_flusher(bool fail) : fail_(fail) {
    // nop
  }

  add_result add(const stream_record&, flush_token t) override {
    pending_.push_back(t);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode) override {
    if (fail_)
      throw std::runtime_error("this flusher always fails");
    return std::exchange(pending_, {});
  }

  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  bool fail_;
  std::vector<flush_token> pending_;
};

struct threaded_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  threaded_system() : sys(init(cfg)) {
    // nop
  }

  static caf::actor_system_config& init(caf::actor_system_config& x) {
    x.set("scheduler.max-threads", 2);
    x.set("logger.console-verbosity", caf::atom("quiet"));
    configure(x);
    return x;
  }
};

shard_group_config group(const std::string& id, bool finite, bool failing = false) {
  shard_group_config g;
  g.shard.id = id;
  g.shard.make_flusher = [failing](const shard_id&) {
    return std::make_unique<test_flusher>(failing);
  };
  g.shard.batch.checkpoint_interval = 10ms;
  g.finite = finite;
  g.intensity = 1;
  g.report = [](const std::string&) {};
  return g;
}

record_batch records(std::uint64_t first, std::uint64_t n) {
  std::vector<stream_record> xs(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    xs[i].partition_key = "k";
    xs[i].data = "record " + std::to_string(first + i);
    xs[i].sequence.base = sequence_base{first + i};
  }
  return record_batch{std::move(xs)};
}

} // namespace

TEST_CASE("a finite shard that gives up does not end the runtime cleanly") {
  threaded_system ts;
  runtime_config rcfg;
  rcfg.finite = true;
  rcfg.intensity = 1;
  auto rt = runtime::start(ts.sys, rcfg);
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("doomed", true, true)));
  REQUIRE_FALSE((*rt)->push("doomed", records(0, 10)));
  REQUIRE_FALSE((*rt)->end("doomed"));
  REQUIRE((*rt)->await(30s));
  CHECK_FALSE((*rt)->ended_cleanly());
}

TEST_CASE("shutdown of a healthy runtime returns no error, twice") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, {});
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  REQUIRE_FALSE((*rt)->push("s", records(0, 10)));
  auto err = (*rt)->shutdown();
  CHECK_FALSE(err);
  CHECK_FALSE((*rt)->shutdown());
}

TEST_CASE("requests to an ended runtime say runtime_ended") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, {});
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  (*rt)->shutdown();
  CHECK(code_of((*rt)->stats("s").error()) == errc::runtime_ended);
  CHECK(code_of((*rt)->push("s", records(0, 1))) == errc::runtime_ended);
  CHECK(code_of((*rt)->stop_shard("s")) == errc::runtime_ended);
  CHECK(code_of((*rt)->end("s")) == errc::runtime_ended);
}

TEST_CASE("requests about a shard the runtime does not have say unknown_shard") {
  threaded_system ts;
  auto rt = runtime::start(ts.sys, {});
  REQUIRE(rt);
  REQUIRE_FALSE((*rt)->start_shard(group("s", false)));
  CHECK(code_of((*rt)->stats("nope").error()) == errc::unknown_shard);
  CHECK(code_of((*rt)->push("nope", records(0, 1))) == errc::unknown_shard);
  CHECK(code_of((*rt)->stop_shard("nope")) == errc::unknown_shard);
  CHECK(code_of((*rt)->end("nope")) == errc::unknown_shard);
  CHECK_FALSE((*rt)->shutdown());
}
