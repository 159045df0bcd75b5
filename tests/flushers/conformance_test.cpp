// The flusher conformance kit (flushers/conformance.hpp): every built-in flusher keeps the
// contract, and a flusher that breaks one rule is caught with that rule named.
#include <shardflow/flushers/conformance.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fcntl.h>
#include <unistd.h>

#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/core/flusher_decorator.hpp>
#include <shardflow/flushers/file_flusher.hpp>
#include <shardflow/flushers/metered_flusher.hpp>
#include <shardflow/flushers/null_flusher.hpp>

#include "tests/support/temp_dir.hpp"

using namespace shardflow;
using shardflow::testing::temp_dir;

namespace {

// Points standard output at /dev/null while alive (the stdout flusher writes there).
struct quiet_stdout {
  int saved = -1;

  quiet_stdout() {
    std::fflush(stdout);
    saved = ::dup(STDOUT_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }

  ~quiet_stdout() {
    std::fflush(stdout);
    ::dup2(saved, STDOUT_FILENO);
    ::close(saved);
  }
};

// The one flaw a broken flusher has; otherwise it behaves as a null flusher of capacity 4.
enum class flaw {
  always_full,
  full_on_large,
  duplicate_token,
  unknown_token,
  returns_refused,
  returns_ignored,
  incomplete_full_flush,
  heartbeat_token_on_empty,
  throws_on_empty_flush,
  throws_heartbeat_before_add,
  run_short_but_added, // add_run takes fewer than offered and answers `added` for the next
  run_overclaims,      // add_run claims one record more than it was offered
  run_drops_tokens,    // add_run takes a run but keeps only its first token
};

class broken_flusher final : public flusher {
public:
  explicit broken_flusher(flaw f) : flaw_(f) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    added_any_ = true;
    if (flaw_ == flaw::always_full || (flaw_ == flaw::full_on_large && x.data.size() > 1000))
      return add_result::full;
    if (pending_.size() >= 4) {
      refused_.push_back(token);
      return add_result::full;
    }
    if (flaw_ == flaw::returns_ignored && token % 3 == 2) {
      ignored_.push_back(token);
      return add_result::ignored;
    }
    pending_.push_back(token);
    return add_result::added;
  }

  std::size_t add_run(const stream_record* xs, std::size_t n, flush_token first,
                      add_result& stop) override {
    if (flaw_ == flaw::run_short_but_added && n > 1) {
      const auto k = flusher::add_run(xs, 1, first, stop);
      stop = add_result::added;
      return k;
    }
    if (flaw_ == flaw::run_overclaims)
      return flusher::add_run(xs, n, first, stop) + 1;
    if (flaw_ == flaw::run_drops_tokens && n > 1) {
      const auto k = flusher::add_run(xs, n, first, stop);
      if (k > 1)
        pending_.resize(pending_.size() - (k - 1));
      return k;
    }
    return flusher::add_run(xs, n, first, stop);
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    if (flaw_ == flaw::throws_on_empty_flush && pending_.empty())
      throw std::runtime_error("nothing to flush");
    std::vector<flush_token> result;
    result.swap(pending_);
    if (flaw_ == flaw::incomplete_full_flush && mode == flush_mode::full && !result.empty()) {
      pending_.push_back(result.back());
      result.pop_back();
    }
    extend(result);
    return result;
  }

  std::vector<flush_token> heartbeat() override {
    if (flaw_ == flaw::throws_heartbeat_before_add && !added_any_)
      throw std::runtime_error("heartbeat before the first record");
    if (flaw_ == flaw::heartbeat_token_on_empty && pending_.empty())
      return {0};
    return {};
  }

private:
  // Adds what the flaw makes a flush return besides the pending tokens.
  void extend(std::vector<flush_token>& result) {
    const auto returned = result;
    if (flaw_ == flaw::duplicate_token)
      result.insert(result.end(), returned.begin(), returned.end());
    if (flaw_ == flaw::unknown_token)
      for (auto token : returned)
        result.push_back(token + 1'000'000);
    if (flaw_ == flaw::returns_refused)
      result.insert(result.end(), refused_.begin(), refused_.end());
    if (flaw_ == flaw::returns_ignored)
      result.insert(result.end(), ignored_.begin(), ignored_.end());
    refused_.clear();
    ignored_.clear();
  }

  flaw flaw_;
  bool added_any_ = false;
  std::vector<flush_token> pending_;
  std::vector<flush_token> refused_;
  std::vector<flush_token> ignored_;
};

flusher_factory broken(flaw f) {
  return [f](const shard_id&) { return std::make_unique<broken_flusher>(f); };
}

// Checks that the kit reports `rule` first and that require_flusher_contract throws its code with
// a message naming it.
void check_caught(const flusher_factory& make, contract_rule rule) {
  const auto report = check_flusher_contract(make);
  INFO(report.summary());
  REQUIRE_FALSE(report.ok());
  CHECK(report.violations.front().rule == rule);
  try {
    require_flusher_contract(make);
    FAIL("require_flusher_contract did not throw");
  } catch (const error& e) {
    CHECK(e.code() == error_code_of(rule));
    CHECK_THAT(e.what(), Catch::Contains(to_string(rule)));
  }
}

} // namespace

SCENARIO("every built-in flusher keeps the flusher contract", "[flushers][conformance]") {
  SECTION("null flusher, capacity 1 and 1000") {
    CHECK(require_flusher_contract(null_flusher::factory(1)).ok());
    CHECK(require_flusher_contract(null_flusher::factory(1000)).ok());
  }
  SECTION("a decorator that changes nothing, around a null flusher") {
    struct plain final : flusher_decorator {
      using flusher_decorator::flusher_decorator;
    };
    CHECK(require_flusher_contract([](const shard_id&) {
            return std::make_unique<plain>(std::make_unique<null_flusher>(5));
          }).ok());
  }
  SECTION("metered flusher around a null flusher") {
    auto meter = std::make_shared<flusher_meter>();
    const auto report
      = require_flusher_contract(metered_flusher::wrap(null_flusher::factory(16), meter));
    CHECK(meter->durable.load() == report.durable);
  }
  SECTION("file flusher in a temporary directory, synced and with small rolls") {
    temp_dir dir;
    file_flusher_config cfg;
    cfg.dir = dir.path;
    cfg.batch_records = 50;
    cfg.roll_bytes = 20'000;
    const auto report = require_flusher_contract(file_flusher::factory(cfg));
    CHECK(report.scenarios == 7);
    CHECK(report.durable > 0);
  }
  SECTION("stdout flusher") {
    quiet_stdout quiet;
    CHECK(require_flusher_contract(stdout_flusher::factory(64)).ok());
  }
}

SCENARIO("the conformance kit catches each broken rule and names it", "[flushers][conformance]") {
  SECTION("full on an empty flusher: a record that never fits") {
    check_caught(broken(flaw::always_full), contract_rule::full_on_empty);
    const auto report = check_flusher_contract(broken(flaw::always_full));
    CHECK_THAT(report.summary(), Catch::Contains("can never fit"));
  }
  SECTION("full for a large record only: found by the large scenario") {
    const auto report = check_flusher_contract(broken(flaw::full_on_large));
    REQUIRE(report.violations.size() == 1);
    CHECK(report.violations.front().scenario == "large");
    CHECK(report.violations.front().rule == contract_rule::full_on_empty);
    conformance_config no_large;
    no_large.large_record_bytes = 0;
    CHECK(check_flusher_contract(broken(flaw::full_on_large), no_large).ok());
  }
  SECTION("a token returned twice") {
    check_caught(broken(flaw::duplicate_token), contract_rule::duplicate_token);
  }
  SECTION("a token never handed out") {
    check_caught(broken(flaw::unknown_token), contract_rule::unknown_token);
  }
  SECTION("the token of a record answered full and not taken") {
    check_caught(broken(flaw::returns_refused), contract_rule::unknown_token);
  }
  SECTION("the token of an ignored record") {
    check_caught(broken(flaw::returns_ignored), contract_rule::ignored_token);
  }
  SECTION("flush(full) leaving a token outstanding") {
    check_caught(broken(flaw::incomplete_full_flush), contract_rule::full_flush_incomplete);
  }
  SECTION("a heartbeat on an empty batch returning a token") {
    check_caught(broken(flaw::heartbeat_token_on_empty), contract_rule::unknown_token);
  }
  SECTION("a flush with nothing outstanding throwing") {
    check_caught(broken(flaw::throws_on_empty_flush), contract_rule::call_threw);
  }
  SECTION("a heartbeat before any add throwing") {
    check_caught(broken(flaw::throws_heartbeat_before_add), contract_rule::call_threw);
  }
  SECTION("add_run taking fewer records than offered yet answering added for the next") {
    check_caught(broken(flaw::run_short_but_added), contract_rule::inconsistent_run);
    CHECK(check_flusher_contract(broken(flaw::run_short_but_added)).violations.front().scenario
          == "runs");
  }
  SECTION("add_run claiming more records than offered") {
    check_caught(broken(flaw::run_overclaims), contract_rule::inconsistent_run);
  }
  SECTION("add_run losing the tokens of a run: found by the runs scenario") {
    const auto report = check_flusher_contract(broken(flaw::run_drops_tokens));
    REQUIRE(report.violations.size() == 1);
    CHECK(report.violations.front().scenario == "runs");
    CHECK(report.violations.front().rule == contract_rule::full_flush_incomplete);
  }
  SECTION("a factory that throws, one that returns no flusher, an empty factory") {
    check_caught(
      [](const shard_id&) -> std::unique_ptr<flusher> { throw std::runtime_error("no disk"); },
      contract_rule::factory_failed);
    check_caught([](const shard_id&) { return std::unique_ptr<flusher>{}; },
                 contract_rule::factory_failed);
    check_caught(flusher_factory{}, contract_rule::factory_failed);
  }
}

SCENARIO("a conforming flusher's report counts what the kit did", "[flushers][conformance]") {
  const auto report = check_flusher_contract(null_flusher::factory(8));
  CHECK(report.ok());
  CHECK(report.scenarios == 7);
  CHECK(report.durable > 0);
  CHECK(report.outstanding_at_crash > 0); // the first restart incarnation is destroyed holding some
  CHECK(report.durable + report.ignored + report.outstanding_at_crash == report.offered);
  CHECK_THAT(report.summary(), Catch::Contains("kept its contract in 7 scenarios"));
  CHECK_THAT(report.summary(), Catch::Contains(fmt::format(
                                 "{} outstanding when a flusher was destroyed as at a crash",
                                 report.outstanding_at_crash)));
}

namespace {

// Keeps a pointer to every added record, not a copy, and reads each one when its token comes back:
// under AddressSanitizer a record freed too early is a use after free.
class pointer_keeping_flusher final : public flusher {
public:
  explicit pointer_keeping_flusher(std::size_t* checked) : checked_(checked) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    if (kept_.size() >= 7)
      return add_result::full;
    kept_.push_back({token, &x, x.data});
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode) override {
    std::vector<flush_token> result;
    for (const auto& k : kept_) {
      if (k.record->data != k.copy)
        throw std::logic_error("a kept record changed before its token came back");
      ++*checked_;
      result.push_back(k.token);
    }
    kept_.clear();
    return result;
  }

  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  struct kept {
    flush_token token;
    const stream_record* record;
    std::string copy;
  };

  std::size_t* checked_;
  std::vector<kept> kept_;
};

} // namespace

SCENARIO("a record stays alive until its token comes back, as core/flusher.hpp promises",
         "[flushers][conformance]") {
  std::size_t checked = 0;
  batch_config cfg;
  cfg.checkpoint_interval = std::chrono::milliseconds(0); // checkpoint (and release) at once
  const auto t0 = batch_processor::clock::now();
  batch_processor p{"kept", std::make_unique<pointer_keeping_flusher>(&checked), cfg, t0};
  std::uint64_t seq = 0;
  for (int b = 0; b < 40; ++b) {
    std::vector<stream_record> xs(b % 5 + 1); // batches of 1..5: a kept record spans batches
    for (auto& x : xs) {
      x.data = "record " + std::to_string(seq) + std::string(100, 'x');
      x.sequence.base = sequence_base{seq++};
    }
    p.process(record_batch{std::move(xs)}, t0); // the processor's caller drops the batch at once
  }
  p.shutdown(shutdown_reason::terminate, t0);
  CHECK(checked == seq);
}
