#include <shardflow/flushers/conformance.hpp>

#include <algorithm>
#include <exception>
#include <memory>
#include <random>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

namespace shardflow {

namespace {

// Drives one flusher as the batch processor does and checks every answer. The first violation ends
// it: later calls do nothing and return false.
class probe {
public:
  probe(std::string scenario, conformance_report& report)
    : scenario_(std::move(scenario)), report_(report) {
    // nop
  }

  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;

  ~probe() {
    close();
  }

  bool open(const flusher_factory& make, const shard_id& id);
  bool offer(stream_record x);
  bool offer_run(std::vector<stream_record> xs);
  bool flush(flush_mode mode);
  bool heartbeat();

  /// Destroys the records still alive, then the flusher (the batch processor's order).
  /// Destroys the flusher as a failing shard does, with whatever it still holds outstanding.
  void close() {
    report_.outstanding_at_crash += outstanding_;
    outstanding_ = 0;
    alive_.clear();
    flusher_.reset();
  }

  bool failed() const noexcept {
    return failed_;
  }

private:
  enum class token_state : std::uint8_t { refused, outstanding, ignored, returned };

  template <class F>
  bool call(const std::string& what, F&& body);
  bool try_add(flush_token token, add_result& result);
  bool resolve(flush_token token, add_result result);
  void settle(flush_token token, add_result result);
  bool take(const std::vector<flush_token>& tokens, const std::string& from);
  bool violate(contract_rule rule, std::string detail);

  std::string scenario_;
  conformance_report& report_;
  std::unique_ptr<flusher> flusher_;
  std::vector<token_state>
    tokens_; // by token: tokens are 0, 1, 2, ... as the processor issues them
  // By token; the records of a run share their run's storage (freed with its last record).
  std::unordered_map<flush_token, std::shared_ptr<const stream_record>> alive_;
  std::size_t outstanding_ = 0;
  bool failed_ = false;
};

bool probe::violate(contract_rule rule, std::string detail) {
  if (!failed_)
    report_.violations.push_back({rule, scenario_, std::move(detail)});
  failed_ = true;
  return false;
}

template <class F>
bool probe::call(const std::string& what, F&& body) {
  if (failed_)
    return false;
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    return violate(contract_rule::call_threw, fmt::format("{} threw: {}", what, e.what()));
  } catch (...) {
    return violate(contract_rule::call_threw,
                   fmt::format("{} threw a non-standard exception", what));
  }
}

bool probe::open(const flusher_factory& make, const shard_id& id) {
  try {
    flusher_ = make(id);
  } catch (const std::exception& e) {
    return violate(contract_rule::factory_failed,
                   fmt::format("the factory threw for shard {}: {}", id, e.what()));
  } catch (...) {
    return violate(contract_rule::factory_failed,
                   fmt::format("the factory threw a non-standard exception for shard {}", id));
  }
  if (!flusher_)
    return violate(contract_rule::factory_failed,
                   fmt::format("the factory returned no flusher for shard {}", id));
  return true;
}

bool probe::try_add(flush_token token, add_result& result) {
  return call(fmt::format("add (token {})", token),
              [&] { result = flusher_->add(*alive_.at(token), token); });
}

void probe::settle(flush_token token, add_result result) {
  if (result == add_result::added) {
    tokens_[token] = token_state::outstanding;
    ++outstanding_;
    return;
  }
  tokens_[token] = token_state::ignored;
  ++report_.ignored;
  alive_.erase(token); // an ignored record is done at once: the contract lets it go now
}

bool probe::offer(stream_record x) {
  if (failed_)
    return false;
  const auto token = static_cast<flush_token>(tokens_.size());
  tokens_.push_back(token_state::refused);
  alive_.emplace(token, std::make_shared<const stream_record>(std::move(x)));
  ++report_.offered;
  auto result = add_result::full;
  return try_add(token, result) && resolve(token, result);
}

// Offers the records of `xs` as the batch processor does: in runs through `add_run`, the record
// that stops a run on its own (again after a flush when it was `full`), then the rest as a run.
bool probe::offer_run(std::vector<stream_record> xs) {
  if (failed_)
    return false;
  const auto run = std::make_shared<const std::vector<stream_record>>(std::move(xs));
  const auto n = run->size();
  const auto first = static_cast<flush_token>(tokens_.size());
  for (std::size_t i = 0; i < n; ++i) {
    tokens_.push_back(token_state::refused);
    alive_.emplace(first + i, std::shared_ptr<const stream_record>(run, &(*run)[i]));
  }
  report_.offered += n;
  for (std::size_t i = 0; i < n; ++i) {
    const auto at = first + i;
    auto stop = add_result::added;
    std::size_t k = 0;
    if (!call(fmt::format("add_run ({} records from token {})", n - i, at),
              [&] { k = flusher_->add_run(run->data() + i, n - i, at, stop); }))
      return false;
    if (k > n - i || (k < n - i && stop == add_result::added))
      return violate(contract_rule::inconsistent_run,
                     fmt::format("add_run of {} records from token {} took {} and answered {} for "
                                 "the next",
                                 n - i, at, k, k < n - i ? "added" : "nothing"));
    for (std::size_t j = 0; j < k; ++j)
      settle(at + j, add_result::added);
    i += k;
    if (i < n && !resolve(first + i, stop))
      return false;
  }
  return true;
}

// Ends the offer of the record of `token` that `add` answered `result`: as the batch processor,
// after `full` a partial flush and again, a full flush and again, then it never fits.
bool probe::resolve(flush_token token, add_result result) {
  for (int attempt = 0; result == add_result::full; ++attempt) {
    if (outstanding_ == 0) {
      const auto bytes = alive_.at(token)->data.size();
      alive_.erase(token);
      return violate(contract_rule::full_on_empty,
                     fmt::format("add (token {}, {} data bytes) answered full with nothing "
                                 "outstanding: the record can never fit",
                                 token, bytes));
    }
    if (!flush(attempt == 0 ? flush_mode::partial : flush_mode::full) || !try_add(token, result))
      return false;
  }
  settle(token, result);
  return true;
}

bool probe::take(const std::vector<flush_token>& tokens, const std::string& from) {
  for (auto token : tokens) {
    if (token >= tokens_.size() || tokens_[token] == token_state::refused)
      return violate(contract_rule::unknown_token,
                     fmt::format("{} returned token {}, which was never added", from, token));
    if (tokens_[token] == token_state::ignored)
      return violate(contract_rule::ignored_token,
                     fmt::format("{} returned token {}, whose record add had answered ignored",
                                 from, token));
    if (tokens_[token] == token_state::returned)
      return violate(contract_rule::duplicate_token,
                     fmt::format("{} returned token {} a second time", from, token));
    tokens_[token] = token_state::returned;
    --outstanding_;
    ++report_.durable;
    alive_.erase(token); // durable: the contract lets the record go now
  }
  return true;
}

bool probe::flush(flush_mode mode) {
  const auto what = fmt::format("flush({}) with {} outstanding", to_string(mode), outstanding_);
  std::vector<flush_token> tokens;
  if (!call(what, [&] { tokens = flusher_->flush(mode); }) || !take(tokens, what))
    return false;
  if (mode == flush_mode::full && outstanding_ > 0)
    return violate(contract_rule::full_flush_incomplete,
                   fmt::format("{} left {} tokens outstanding", what, outstanding_));
  return true;
}

bool probe::heartbeat() {
  const auto what = fmt::format("heartbeat with {} outstanding", outstanding_);
  std::vector<flush_token> tokens;
  return call(what, [&] { tokens = flusher_->heartbeat(); }) && take(tokens, what);
}

// -- scenarios ------------------------------------------------------------------------------------

stream_record make_record(std::size_t i, std::size_t size, std::mt19937_64& rng) {
  stream_record x;
  x.partition_key = fmt::format("pk-{}", i % 13);
  x.data.resize(size);
  const bool binary = i % 5 == 4; // most records text, some arbitrary bytes
  for (auto& c : x.data)
    c = static_cast<char>(binary ? rng() % 256 : 'a' + rng() % 26);
  x.sequence.base = sequence_base{static_cast<std::uint64_t>(i + 1)};
  if (i % 3 == 0)
    x.arrival_ms = 1'700'000'000'000 + static_cast<std::int64_t>(i);
  return x;
}

bool offer_stream(probe& p, const conformance_config& cfg) {
  std::mt19937_64 rng{cfg.seed};
  for (std::size_t i = 0; i < cfg.records; ++i) {
    if (!p.offer(make_record(i, rng() % (cfg.max_data_bytes + 1), rng)))
      return false;
    if (cfg.heartbeat_every > 0 && (i + 1) % cfg.heartbeat_every == 0 && !p.heartbeat())
      return false;
    if (cfg.flush_every > 0 && (i + 1) % cfg.flush_every == 0 && !p.flush(flush_mode::partial))
      return false;
  }
  return true;
}

// Runs of 1 to 40 records through add_run, with heartbeats and partial flushes between them.
bool offer_runs(probe& p, const conformance_config& cfg) {
  std::mt19937_64 rng{cfg.seed + 1};
  for (std::size_t i = 0, runs = 0; i < cfg.records; ++runs) {
    const auto n = std::min<std::size_t>(1 + rng() % 40, cfg.records - i);
    std::vector<stream_record> xs;
    xs.reserve(n);
    for (std::size_t j = 0; j < n; ++j, ++i)
      xs.push_back(make_record(i, rng() % (cfg.max_data_bytes + 1), rng));
    if (!p.offer_run(std::move(xs)))
      return false;
    if (runs % 3 == 2 && !p.heartbeat())
      return false;
    if (runs % 5 == 4 && !p.flush(flush_mode::partial))
      return false;
  }
  return true;
}

void run_empty(const flusher_factory& make, const conformance_config& cfg, conformance_report& r) {
  probe p{"empty", r};
  static_cast<void>(p.open(make, cfg.shard) && p.heartbeat() && p.flush(flush_mode::partial)
                    && p.flush(flush_mode::full) && p.heartbeat());
}

void run_stream(const flusher_factory& make, const conformance_config& cfg, conformance_report& r) {
  probe p{"stream", r};
  static_cast<void>(p.open(make, cfg.shard) && offer_stream(p, cfg) && p.flush(flush_mode::full)
                    && p.flush(flush_mode::full) && p.heartbeat());
}

void run_runs(const flusher_factory& make, const conformance_config& cfg, conformance_report& r) {
  probe p{"runs", r};
  static_cast<void>(p.open(make, cfg.shard) && offer_runs(p, cfg) && p.flush(flush_mode::full)
                    && p.heartbeat());
}

void run_single(const flusher_factory& make, const conformance_config& cfg, conformance_report& r) {
  probe p{"single", r};
  std::mt19937_64 rng{cfg.seed};
  static_cast<void>(p.open(make, cfg.shard) && p.offer(make_record(0, 10, rng))
                    && p.flush(flush_mode::full) && p.offer(make_record(1, 10, rng))
                    && p.flush(flush_mode::full));
}

void run_large(const flusher_factory& make, const conformance_config& cfg, conformance_report& r) {
  probe p{"large", r};
  std::mt19937_64 rng{cfg.seed};
  static_cast<void>(p.open(make, cfg.shard) && p.offer(make_record(0, cfg.large_record_bytes, rng))
                    && p.flush(flush_mode::full));
}

// The first incarnation is destroyed with records outstanding, as when its shard fails; the
// second is given the same records again.
void run_restart(const flusher_factory& make, const conformance_config& cfg,
                 conformance_report& r) {
  probe first{"restart", r};
  if (!first.open(make, cfg.shard) || !offer_stream(first, cfg))
    return;
  first.close();
  probe second{"restart", r};
  static_cast<void>(second.open(make, cfg.shard) && offer_stream(second, cfg)
                    && second.flush(flush_mode::full));
}

void run_two_shards(const flusher_factory& make, const conformance_config& cfg,
                    conformance_report& r) {
  probe a{"two shards", r};
  probe b{"two shards", r};
  if (!a.open(make, cfg.shard) || !b.open(make, cfg.shard + "-b"))
    return;
  std::mt19937_64 rng{cfg.seed};
  for (std::size_t i = 0; i < cfg.records / 4; ++i)
    if (!a.offer(make_record(i, 20, rng)) || !b.offer(make_record(i, 20, rng)))
      return;
  static_cast<void>(a.flush(flush_mode::full) && b.flush(flush_mode::full));
}

} // namespace

const char* to_string(contract_rule rule) noexcept {
  switch (rule) {
    case contract_rule::factory_failed:
      return "factory_failed";
    case contract_rule::call_threw:
      return "call_threw";
    case contract_rule::full_on_empty:
      return "full_on_empty";
    case contract_rule::duplicate_token:
      return "duplicate_token";
    case contract_rule::unknown_token:
      return "unknown_token";
    case contract_rule::ignored_token:
      return "ignored_token";
    case contract_rule::full_flush_incomplete:
      return "full_flush_incomplete";
    case contract_rule::inconsistent_run:
      return "inconsistent_run";
  }
  return "unknown";
}

errc error_code_of(contract_rule rule) noexcept {
  switch (rule) {
    case contract_rule::factory_failed:
    case contract_rule::call_threw:
    case contract_rule::inconsistent_run:
      return errc::flusher_failed;
    case contract_rule::full_on_empty:
      return errc::record_never_fits;
    case contract_rule::duplicate_token:
    case contract_rule::ignored_token: // the processor counts an ignored record as done already
      return errc::duplicate_token;
    case contract_rule::unknown_token:
      return errc::unknown_token;
    case contract_rule::full_flush_incomplete:
      return errc::incomplete_full_flush;
  }
  return errc::flusher_failed;
}

std::string conformance_report::summary() const {
  if (ok())
    return fmt::format("the flusher kept its contract in {} scenarios ({} records offered, {} "
                       "ignored, {} tokens returned, {} outstanding when a flusher was destroyed "
                       "as at a crash)\n",
                       scenarios, offered, ignored, durable, outstanding_at_crash);
  std::string result;
  for (const auto& v : violations)
    result += fmt::format("{}: {}: {}\n", v.scenario, to_string(v.rule), v.detail);
  return result;
}

conformance_report check_flusher_contract(const flusher_factory& make,
                                          const conformance_config& cfg) {
  conformance_report report;
  if (!make) {
    report.violations.push_back({contract_rule::factory_failed, "all", "the factory is empty"});
    return report;
  }
  using scenario = void (*)(const flusher_factory&, const conformance_config&, conformance_report&);
  for (scenario run :
       {run_empty, run_stream, run_runs, run_single, run_large, run_restart, run_two_shards}) {
    if (run == run_large && cfg.large_record_bytes == 0)
      continue;
    run(make, cfg, report);
    ++report.scenarios;
  }
  return report;
}

conformance_report require_flusher_contract(const flusher_factory& make,
                                            const conformance_config& cfg) {
  auto report = check_flusher_contract(make, cfg);
  if (!report.ok())
    throw error{error_code_of(report.violations.front().rule),
                fmt::format("the flusher breaks the contract of core/flusher.hpp:\n{}",
                            report.summary())};
  return report;
}

} // namespace shardflow
