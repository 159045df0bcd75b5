// flushers/conformance.hpp - the flusher conformance kit: runs a flusher factory through the
// contract of core/flusher.hpp and reports every rule it breaks.
//
// An implementer checks a new flusher in one line, from any test framework:
//
//     REQUIRE_NOTHROW(shardflow::require_flusher_contract(my_factory)); // throws, naming the rule
//     auto report = shardflow::check_flusher_contract(my_factory);      // or: read the report
//     if (!report.ok()) std::cerr << report.summary();
//
// The kit drives the flushers the way the batch processor does (core/batch_processor.hpp): tokens
// 0, 1, 2, ... per flusher; after `full` a partial flush and the same record again, then a full
// flush and the record again; heartbeats and partial flushes in between; `flush(full)` at the end.
// Where the processor uses `add_run`, so does the kit (the "runs" scenario).
// It runs these scenarios, each on fresh flushers from the factory, and stops a scenario at its
// first violation (the batch processor would have failed the shard there):
//
//   empty       heartbeat, flush(partial), flush(full), heartbeat on a flusher that was never given
//               a record: all legal, none may throw or return a token
//   stream      `records` records of varied sizes with heartbeats and partial flushes, then
//               flush(full), then flush(full) and heartbeat with nothing outstanding
//   runs        `records` records offered in runs of 1 to 40 through `add_run`, as the batch
//               processor does (the record that stops a run alone, after a flush when it was
//               `full`), heartbeats and partial flushes between runs, then flush(full)
//   single      one record and flush(full); again on the same flusher (it stays usable)
//   large       one record of `large_record_bytes` on a fresh flusher (`full` there means it can
//               never fit)
//   restart     a second incarnation of the same shard, after the first was destroyed, is given the
//               same records again (a restarted shard replays) and flushed fully
//   two shards  two flushers of different shards used in turns, each flushed fully
//
// Rules (`contract_rule`): the factory makes a flusher; legal calls do not throw; `full` only with
// something outstanding; no token twice; only tokens of records that were added (not of records
// answered `full` and never taken, nor of records never offered); never the token of an ignored
// record; nothing outstanding after `flush(full)`; `add_run` answers what it took (k <= n, and a
// stop that is not `added` when k < n).
//
// Record lifetime: the kit keeps each record alive exactly as long as the contract promises (until
// its token comes back; an ignored or refused record only during `add`), and destroys the records
// before the flusher, as the batch processor does. Run the kit under AddressSanitizer and a flusher
// that reads a record's bytes after that is caught as a use after free (reads that happen only
// inside libstdc++'s non-inline std::string members are not instrumented).
//
// Threading: the kit calls the flushers from the calling thread only. Flushers that write files
// write them wherever their factory says (give it a temporary directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <shardflow/core/error.hpp>
#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// A rule of the flusher contract that the kit checks.
enum class contract_rule : std::uint8_t {
  /// The factory threw or returned no flusher.
  factory_failed,
  /// `add`, `flush` or `heartbeat` threw on a legal call.
  call_threw,
  /// `add` answered `full` with nothing outstanding: the record can never fit.
  full_on_empty,
  /// A token came back twice.
  duplicate_token,
  /// A token came back that was never added (never offered, or answered `full` and not taken).
  unknown_token,
  /// The token of an ignored record came back.
  ignored_token,
  /// `flush(full)` left tokens outstanding.
  full_flush_incomplete,
  /// `add_run` of n records claimed more than n, or fewer with `added` as the answer for the next.
  inconsistent_run,
};

/// Returns the rule's name, e.g. "full_on_empty".
const char* to_string(contract_rule rule) noexcept;

/// Returns the error code the batch processor fails a shard with for `rule` (for
/// `require_flusher_contract`).
errc error_code_of(contract_rule rule) noexcept;

/// One broken rule, where it broke and how.
struct contract_violation {
  contract_rule rule;
  /// The scenario it broke in, e.g. "stream".
  std::string scenario;
  /// A sentence naming the call, the token or record, and the rule.
  std::string detail;
};

/// What the kit offers; the defaults suit flushers that write local files.
struct conformance_config {
  /// The shard id given to the factory (the second shard of "two shards" gets "-b" appended).
  shard_id shard = "conformance-0";
  /// Records offered in the "stream" and "restart" scenarios.
  std::size_t records = 600;
  /// Largest data size in the "stream" scenario; sizes vary from 0 to this.
  std::size_t max_data_bytes = 300;
  /// Data size of the record of the "large" scenario; 0 skips the scenario.
  std::size_t large_record_bytes = std::size_t{64} << 10;
  /// In "stream": a heartbeat after every this many records (0: none).
  std::size_t heartbeat_every = 7;
  /// In "stream": a partial flush after every this many records (0: none).
  std::size_t flush_every = 97;
  /// Seeds the record sizes and contents.
  std::uint64_t seed = 11;
};

/// What the kit found.
struct conformance_report {
  /// Every broken rule, at most one per scenario, in scenario order.
  std::vector<contract_violation> violations;
  /// Scenarios run.
  std::size_t scenarios = 0;
  /// Records offered (counted once however often `full` made the kit offer them again).
  std::uint64_t offered = 0;
  /// Records answered `ignored`.
  std::uint64_t ignored = 0;
  /// Tokens that came back.
  std::uint64_t durable = 0;
  /// Records still outstanding when the kit destroyed a flusher as a failing shard does (the
  /// restart scenario): neither returned nor lost, a restart replays them. offered = ignored +
  /// durable + this, for a flusher that kept its contract.
  std::uint64_t outstanding_at_crash = 0;

  /// Returns whether no rule was broken.
  bool ok() const noexcept {
    return violations.empty();
  }

  /// Returns one line per violation ("scenario: rule: detail"), or a line saying all rules held.
  std::string summary() const;
};

/// Runs every scenario on flushers made by `make` and returns what broke; never throws for a
/// flusher's failure (that is a violation in the report).
conformance_report check_flusher_contract(const flusher_factory& make,
                                          const conformance_config& cfg = {});

/// Runs `check_flusher_contract` and returns its report if every rule held.
/// @throws shardflow::error with the code of the first violation (`error_code_of`) and a message
///         listing every violation.
conformance_report require_flusher_contract(const flusher_factory& make,
                                            const conformance_config& cfg = {});

} // namespace shardflow
