// bench/processor_bench.cpp - records/s through the batch processor, beside an erlmld-style baseline.
//
// Both sides get the same 2,000,000 pre-built records (100-byte data, 56-digit Kinesis-like sequence
// numbers) in batches of 500, a flusher of capacity 1,000 that makes every record durable on flush,
// and read the clock once per batch with a checkpoint interval of 0 (a checkpoint whenever it moves).
//
// - subject:  shardflow::batch_processor with null_flusher (tokens are counters; the tracker keeps a
//             ring bounded by the out-of-order window);
// - baseline: the same decisions made the way erlmld makes them: each token is {count, sequence
//             number}, every flushed token goes into an ordered map (erlmld's gb_tree), and a
//             checkpoint pops the contiguous run from the smallest key.
//
// Both end with a final flush and a checkpoint at the last record (shard end), timed.
//
// Prints the median of several runs of each, their spread, and the ratio. Not a test, but in every
// run both sides must make every record durable, checkpoint once per flush of 1,000 records (2,000
// checkpoints) and last at the last record; otherwise the bench prints why and no figure (a
// `FAILED<TAB>processor<TAB>why` line), and exits 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/realistic_records.hpp"
#include <shardflow/core/batch_processor.hpp>
#include <shardflow/flushers/null_flusher.hpp>

using namespace shardflow;
using bench_clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t record_count = 2'000'000;
constexpr std::size_t batch_size = 500;
constexpr std::size_t flusher_capacity = 1'000;

// erlmld's batch processor, transcribed: tokens carry the sequence number, flushed tokens go into an
// ordered map, and a checkpoint walks the map from its smallest key while keys are contiguous.
class erlmld_style_processor {
public:
  std::optional<sequence_number> process(const record_batch& batch) {
    for (const auto& x : batch) {
      if (pending_.size() >= flusher_capacity)
        flush();
      pending_.emplace_back(count_++, x.sequence);
    }
    return maybe_checkpoint();
  }

  // The final flush and checkpoint at shard end (the subject's shutdown(terminate)).
  std::optional<sequence_number> finish() {
    flush();
    return maybe_checkpoint();
  }

  /// Returns how many records were made durable (moved into the ordered map).
  std::uint64_t durable() const noexcept {
    return durable_;
  }

private:
  void flush() {
    for (auto& token : pending_)
      checkpointable_.emplace(token.first, std::move(token.second));
    durable_ += pending_.size();
    pending_.clear();
  }

  std::optional<sequence_number> maybe_checkpoint() {
    std::optional<sequence_number> result;
    auto i = checkpointable_.begin();
    while (i != checkpointable_.end() && i->first == next_) {
      result = i->second;
      ++next_;
      i = checkpointable_.erase(i);
    }
    return result;
  }

  std::uint64_t count_ = 0;
  std::uint64_t next_ = 0;
  std::uint64_t durable_ = 0;
  std::vector<std::pair<std::uint64_t, sequence_number>> pending_;
  std::map<std::uint64_t, sequence_number> checkpointable_;
};

struct figures {
  double seconds;
  std::size_t checkpoints;
  std::string last;
  std::uint64_t durable; // records the flusher made durable
};

figures run_subject(const std::vector<record_batch>& batches) {
  batch_config cfg;
  cfg.flush_interval = std::chrono::seconds(1);
  cfg.checkpoint_interval = std::chrono::milliseconds(0);
  batch_processor p{"bench", std::make_unique<null_flusher>(flusher_capacity), cfg,
                    bench_clock::now()};
  std::size_t checkpoints = 0;
  std::string last;
  const auto start = bench_clock::now();
  for (const auto& batch : batches)
    if (auto cp = p.process(batch, bench_clock::now()))
      ++checkpoints;
  if (auto cp = p.shutdown(shutdown_reason::terminate, bench_clock::now()); cp && cp->position) {
    ++checkpoints;
  }
  const auto stop = bench_clock::now();
  const auto& lc = p.stats().last_checkpoint;
  last = lc ? to_string(*lc) : std::string{"none"};
  const auto stats = p.stats();
  const auto durable = stats.outstanding == 0 ? stats.flushed : 0; // none may be left outstanding
  return {std::chrono::duration<double>(stop - start).count(), checkpoints, last, durable};
}

figures run_baseline(const std::vector<record_batch>& batches) {
  erlmld_style_processor p;
  std::size_t checkpoints = 0;
  std::optional<sequence_number> last;
  const auto start = bench_clock::now();
  for (const auto& batch : batches) {
    (void) bench_clock::now(); // the same clock read per batch as the subject
    if (auto cp = p.process(batch)) {
      ++checkpoints;
      last = std::move(cp);
    }
  }
  if (auto cp = p.finish()) {
    ++checkpoints;
    last = std::move(cp);
  }
  const auto stop = bench_clock::now();
  return {std::chrono::duration<double>(stop - start).count(), checkpoints,
          last ? to_string(*last) : std::string{"none"}, p.durable()};
}

struct summary {
  double median;
  double min;
  double max;
};

summary summarize(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return {xs[xs.size() / 2], xs.front(), xs.back()};
}

// Returns why side `who` did not do its job (every record durable, one checkpoint per flush, the
// last at the last record `want`), or nothing.
std::string check(const figures& f, const std::string& want, const char* who) {
  constexpr std::size_t checkpoints = record_count / flusher_capacity;
  std::string why;
  if (f.durable != record_count)
    why += " the " + std::string{who} + " made " + std::to_string(f.durable) + " of "
           + std::to_string(record_count) + " records durable";
  if (f.checkpoints != checkpoints)
    why += " the " + std::string{who} + " checkpointed " + std::to_string(f.checkpoints)
           + " times, not " + std::to_string(checkpoints);
  if (f.last != want)
    why += " the " + std::string{who} + "'s last checkpoint is " + f.last + ", not the last record "
           + want;
  return why;
}

} // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  std::printf("building %zu records (100-byte data, 56-digit sequence numbers)...\n", record_count);
  const auto batches = testing::make_batches(record_count, batch_size);
  std::vector<double> subject_rates;
  std::vector<double> baseline_rates;
  figures subject{};
  figures baseline{};
  const auto want = to_string(batches.back().back().sequence);
  for (int i = 0; i < runs; ++i) {
    subject = run_subject(batches);
    baseline = run_baseline(batches);
    if (auto why = check(subject, want, "subject") + check(baseline, want, "baseline");
        !why.empty()) {
      std::fprintf(stderr, "processor_bench: run %d:%s; no figure\n", i + 1, why.c_str());
      std::printf("FAILED\tprocessor\trun %d:%s\n", i + 1, why.c_str());
      return 1;
    }
    subject_rates.push_back(record_count / subject.seconds);
    baseline_rates.push_back(record_count / baseline.seconds);
  }
  const auto s = summarize(subject_rates);
  const auto b = summarize(baseline_rates);
  std::printf("\nbatch processor, %zu records in batches of %zu, flusher capacity %zu, %d runs\n\n",
              record_count, batch_size, flusher_capacity, runs);
  std::printf("%-34s %14s %10s %22s\n", "side", "records/s", "ns/record", "spread (min..max M/s)");
  std::printf("%-34s %14.0f %10.2f %10.1f..%-10.1f\n", "subject: batch_processor", s.median,
              1e9 / s.median, s.min / 1e6, s.max / 1e6);
  std::printf("%-34s %14.0f %10.2f %10.1f..%-10.1f\n", "baseline: erlmld-style ordered map",
              b.median, 1e9 / b.median, b.min / 1e6, b.max / 1e6);
  std::printf("\nratio subject/baseline: %.2fx   (targets: >= 50 M records/s, >= 3x)\n",
              s.median / b.median);
  std::printf("checkpoints: subject %zu (last %s), baseline %zu (last %s)\n", subject.checkpoints,
              subject.last.c_str(), baseline.checkpoints, baseline.last.c_str());
  std::printf("ROW\tprocessor\t%.1f\t%.1f\tM rec/s (target >= 50, >= 3x)\t%.1f..%.1f\n",
              s.median / 1e6, b.median / 1e6, s.min / 1e6, s.max / 1e6);
  return 0;
}
