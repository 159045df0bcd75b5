// bench/actors_bench.cpp - records/s through shard actors, beside the same work in a direct loop.
//
// The same pre-built records (100-byte data, 56-digit sequence numbers, batches of 500) go to N
// shards: every shard reads the first B batches of one shared pool (batches are immutable and shared,
// so 10,000 shards need no more memory than one), with B = max(4, 4,000,000 / 500 / N): at least
// 4,000,000 records in all, and 20,000,000 at 10,000 shards, where start-up would swamp fewer.
//
// - subject:  the full runtime: a root supervisor over N shard groups (feeder + shard actor, a
//             null flusher of capacity 1,000 that counts what it made durable), checkpoints to an
//             in-memory sink every 100 ms, CAF worker threads = cores. Timed from spawning the
//             tree until every shard has checkpointed its end and the tree has shut itself down
//             (start-up and shutdown included).
// - baseline: one thread, N batch processors with the same flusher, fed the same batches in the
//             same order (the direct loop: no actors, no messages).
//
// The `startup-10k` row: 10,000 groups of one batch each, whole runs (start, the batch, end,
// shutdown) of a root with `parallel_start` (subject) against one handshake at a time (baseline).
//
// At 1,024 and 10,000 shards the runs also note when the root said every group is up (printed,
// and an `actors-Nk-start` row) and how many records came after that. The `-steady` rows of
// earlier runs (an empty job's time subtracted) are gone: measured, there is no steady phase to
// show, since nearly every record is received before the last group is up.
//
// Prints records/s of both, the ratio, and the median and spread of several runs. Not a test, but
// each run checks its outcome before it counts: the tree ended by itself (did not give up), every
// shard started once (no restart), received and made durable each of its records, and checkpointed
// its end once, at its last record; the direct loop made every record durable and checkpointed
// every shard at its last record. A shard count whose run failed prints why on standard error and
// `FAILED<TAB>row<TAB>why` lines instead of its rows; the other shard counts still run, and the
// bench exits 1.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "tests/support/generator_source.hpp"
#include "tests/support/realistic_records.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/batch_processor.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/shard_meters.hpp>
#include <shardflow/flushers/null_flusher.hpp>

using namespace shardflow;
using bench_clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t batch_size = 500;
constexpr std::size_t flusher_capacity = 1000;

using testing::batches_source;
using counter = std::atomic<std::uint64_t>;

double since(bench_clock::time_point t0, bench_clock::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

// null_flusher (flushers/null_flusher.cpp), counting the tokens it returns: the records it made
// durable. One counter per shard, written by that shard only.
class counting_flusher final : public flusher {
public:
  explicit counting_flusher(counter* durable) : inner_(flusher_capacity), durable_(durable) {
  }

  add_result add(const stream_record& x, flush_token token) override {
    return inner_.add(x, token);
  }

  std::size_t add_run(const stream_record* xs, std::size_t n, flush_token first,
                      add_result& stop) override {
    return inner_.add_run(xs, n, first, stop);
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    auto result = inner_.flush(mode);
    durable_->fetch_add(result.size(), std::memory_order_relaxed);
    return result;
  }

  std::vector<flush_token> heartbeat() override {
    return {};
  }

private:
  null_flusher inner_;
  counter* durable_;
};

// The in-memory store of one run, counting incarnations (loads), checkpoints at a position and end
// markers, and noting when the last checkpoint at a position was saved. Called from the sink only;
// read once the tree is down.
class counting_store final : public checkpoint_store {
public:
  explicit counting_store(bench_clock::time_point t0) : t0_(t0) {
  }
  stored_checkpoint load(const shard_id& id) override {
    ++loads;
    return inner_.load(id);
  }
  void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) override {
    inner_.save(id, generation, cp);
    if (cp.position) {
      ++positions;
      last_position = since(t0_, bench_clock::now());
    } else {
      ++ends;
    }
  }
  std::optional<stored_checkpoint> peek(const shard_id& id) const {
    return inner_.peek(id);
  }

  std::uint64_t loads = 0;
  std::uint64_t positions = 0;
  std::uint64_t ends = 0;
  double last_position = 0; // seconds after t0

private:
  bench_clock::time_point t0_;
  memory_checkpoint_store inner_;
};

// The batches of one shard: the first `per_shard` of the pool.
std::vector<record_batch> first(const std::vector<record_batch>& pool, std::size_t per_shard) {
  return {pool.begin(),
          pool.begin() + static_cast<std::ptrdiff_t>(std::min(per_shard, pool.size()))};
}

// What one run took, or why it failed (then its times mean nothing).
struct run_result {
  double seconds = 0;         // to the end of the tree (or of the direct loop)
  double started = 0;         // to the root's answer that every group is up
  double last_checkpoint = 0; // to the last checkpoint at a position
  double after_start = 0;     // records received after every group was up
  std::string failure;
};

// What the shards of one actor run share with the bench: per shard, the records its flusher made
// durable and its meters.
struct run_ledger {
  explicit run_ledger(std::size_t shards) : durable(new counter[shards]()), meters(shards) {
    for (auto& m : meters)
      m = std::make_shared<shard_meters>();
  }
  std::unique_ptr<counter[]> durable;
  std::vector<std::shared_ptr<shard_meters>> meters;
};

// Returns why shard `s` did not end as it should (started once, received and made durable each
// of its records, checkpointed its end at its last record), or nothing.
std::string check_shard(const counting_store& store, const run_ledger& ledger, std::size_t s,
                        const std::vector<record_batch>& mine, std::uint64_t records) {
  const auto id = "shard-" + std::to_string(s);
  const auto row = store.peek(id);
  if (!row || !row->ended)
    return id + " did not checkpoint its end";
  if (mine.empty() ? row->position.has_value() : row->position != mine.back().back().sequence)
    return id + " did not checkpoint at its last record";
  const auto& m = *ledger.meters[s];
  if (m.restarts.load() != 0)
    return id + " was restarted " + std::to_string(m.restarts.load()) + " times";
  if (m.records_received.load() != records)
    return id + " received " + std::to_string(m.records_received.load()) + " of "
           + std::to_string(records) + " records";
  if (ledger.durable[s].load() != records)
    return id + "'s flusher made " + std::to_string(ledger.durable[s].load()) + " of "
           + std::to_string(records) + " records durable";
  return {};
}

// Returns why the tree's outcome is not "every shard did its job once", or nothing.
std::string check_tree(const counting_store& store, const run_ledger& ledger, std::size_t shards,
                       const std::vector<record_batch>& mine) {
  std::uint64_t records = 0;
  for (const auto& b : mine)
    records += b.size();
  std::size_t bad = 0;
  std::string first;
  for (std::size_t s = 0; s < shards; ++s)
    if (auto why = check_shard(store, ledger, s, mine, records); !why.empty() && bad++ == 0)
      first = std::move(why);
  if (bad > 0)
    return std::to_string(bad) + " of " + std::to_string(shards)
           + " shards did not do their job once (first: " + first + ")";
  if (store.loads != shards || store.ends != shards)
    return std::to_string(store.loads) + " incarnations and " + std::to_string(store.ends)
           + " end markers for " + std::to_string(shards) + " shards";
  if (!mine.empty() && store.positions < shards)
    return std::to_string(store.positions) + " checkpoints at a position for "
           + std::to_string(shards) + " shards";
  return {};
}

std::vector<child_spec> shard_groups(const std::vector<record_batch>& mine, std::size_t shards,
                                     const caf::actor& sink, run_ledger& ledger) {
  std::vector<child_spec> groups;
  for (std::size_t s = 0; s < shards; ++s) {
    shard_group_config g;
    g.shard.id = "shard-" + std::to_string(s);
    g.shard.make_flusher = [durable = &ledger.durable[s]](const shard_id&) {
      return std::make_unique<counting_flusher>(durable);
    };
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(100);
    g.shard.credit = 4 * batch_size;
    g.shard.meters = ledger.meters[s];
    g.feeder.max_batch = batch_size;
    g.feeder.poll_interval = std::chrono::milliseconds(0);
    g.source = [xs = mine] { return std::make_shared<batches_source>(xs); };
    g.sink = sink;
    g.finite = true;
    groups.push_back(shard_group(std::move(g)));
  }
  return groups;
}

// Waits for the root's answer to (start_atom): every group is up. Notes the time and the records
// received so far; returns why the start failed, or nothing.
std::string await_start(caf::scoped_actor& self, const caf::actor& root, const run_ledger& ledger,
                        bench_clock::time_point t0, run_result& r) {
  std::string failure;
  self->request(root, caf::infinite, start_atom::value)
    .receive([&](caf::ok_atom) { r.started = since(t0, bench_clock::now()); },
             [&](caf::error& err) {
               failure = "the tree did not start: " + self->system().render(err);
             });
  std::uint64_t before = 0;
  for (const auto& m : ledger.meters)
    before += m->records_received.load(std::memory_order_relaxed);
  r.after_start = -static_cast<double>(before); // the total is added at the end
  return failure;
}

run_result run_actors(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                      std::size_t shards, unsigned threads, bool parallel_start = false) {
  caf::actor_system_config cfg;
  configure(cfg);
  cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{cfg};
  const auto mine = first(pool, per_shard_batches);
  run_ledger ledger{shards};
  const auto t0 = bench_clock::now();
  auto store = std::make_shared<counting_store>(t0);
  auto sink = spawn_checkpoint_sink(sys, store);
  supervisor_flags f;
  f.shutdown_mode = auto_shutdown::all_significant;
  f.start_timeout = std::chrono::seconds(60);
  f.parallel_start = parallel_start; // only the startup-10k row's subject
  f.start_window = 64;
  auto root = spawn_supervisor(sys, f, shard_groups(mine, shards, sink, ledger));
  if (!root)
    return {0, 0, 0, 0, "the root supervisor did not start: " + sys.render(root.error())};
  caf::scoped_actor self{sys};
  self->monitor(*root);
  run_result r;
  auto start_failure = await_start(self, *root, ledger, t0, r);
  caf::error reason;
  self->receive([&reason](caf::down_msg& m) { reason = m.reason; });
  r.seconds = since(t0, bench_clock::now());
  self->send_exit(sink, caf::exit_reason::user_shutdown);
  // A finite tree ends by auto_shutdown (user_shutdown); anything else means it gave up or crashed.
  if (reason && reason != caf::exit_reason::user_shutdown && reason != caf::exit_reason::normal)
    r.failure = "the supervision tree did not end by itself: " + sys.render(reason);
  else if (!start_failure.empty())
    r.failure = std::move(start_failure);
  else // the sink answered every save before the shards ended, so the store is complete here
    r.failure = check_tree(*store, ledger, shards, mine);
  r.last_checkpoint = store->last_position;
  r.after_start += static_cast<double>(per_shard_batches * batch_size * shards);
  return r;
}

run_result run_direct(const std::vector<record_batch>& pool, std::size_t per_shard_batches,
                      std::size_t shards) {
  batch_config cfg;
  cfg.checkpoint_interval = std::chrono::milliseconds(100);
  std::unique_ptr<counter[]> durable{new counter[shards]()};
  const auto start = bench_clock::now();
  std::vector<std::unique_ptr<batch_processor>> procs;
  for (std::size_t s = 0; s < shards; ++s)
    procs.push_back(std::make_unique<batch_processor>(
      "shard-" + std::to_string(s), std::make_unique<counting_flusher>(&durable[s]), cfg,
      bench_clock::now()));
  for (std::size_t b = 0; b < per_shard_batches; ++b)
    for (auto& p : procs)
      p->process(pool[b], bench_clock::now());
  for (auto& p : procs)
    p->shutdown(shutdown_reason::terminate, bench_clock::now());
  run_result result;
  result.seconds = since(start, bench_clock::now());
  const auto& last = pool[per_shard_batches - 1].back().sequence;
  for (std::size_t s = 0; s < shards; ++s)
    if (procs[s]->stats().last_checkpoint != last
        || durable[s].load() != per_shard_batches * batch_size) {
      result.failure = "the direct loop did not make every record of shard-" + std::to_string(s)
                       + " durable and checkpoint it at its last record";
      break;
    }
  return result;
}

struct summary {
  double median, min, max;
};

summary summarize(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return {xs[xs.size() / 2], xs.front(), xs.back()};
}

const char* row_name(std::size_t shards) {
  switch (shards) {
    case 1:
      return "1";
    case 64:
      return "64";
    case 1024:
      return "1k";
    default:
      return "10k";
  }
}

// The measured runs of one shard count: actors and direct loop alternating; stops at the first
// failed run (`failure`).
struct shard_count_runs {
  std::vector<run_result> actors;
  std::vector<double> direct; // seconds
  std::string failure;
};

shard_count_runs measure(const std::vector<record_batch>& batches, std::size_t per_shard,
                         std::size_t shards, unsigned threads, int runs) {
  shard_count_runs out;
  for (int r = 0; r < runs && out.failure.empty(); ++r) {
    auto a = run_actors(batches, per_shard, shards, threads);
    if (!a.failure.empty()) {
      out.failure = "actors, run " + std::to_string(r + 1) + ": " + a.failure;
      break;
    }
    out.actors.push_back(std::move(a));
    auto d = run_direct(batches, per_shard, shards);
    if (!d.failure.empty())
      out.failure = "direct loop, run " + std::to_string(r + 1) + ": " + d.failure;
    out.direct.push_back(d.seconds);
  }
  return out;
}

// Prints the start-up of the tree (spawn until the root says every group is up) and what came
// after it: the records received after the last group was up, over the time from then to the last
// checkpoint at a position (the "-steady" rate of issue 16). No ROW for that rate: with a few
// batches per shard, every record has usually been received before the last group is up.
void startup_row(const shard_count_runs& m, std::size_t shards) {
  std::vector<double> starts;
  std::vector<double> stops;
  std::vector<double> left;
  std::vector<double> steady;
  for (const auto& a : m.actors) {
    starts.push_back(a.started);
    stops.push_back(a.seconds - a.last_checkpoint);
    left.push_back(std::max(0.0, a.after_start));
    const auto window = a.last_checkpoint - a.started;
    if (a.after_start > 0 && window > 0)
      steady.push_back(a.after_start / window / 1e6);
  }
  const auto start = summarize(starts);
  std::printf("         every group up after %.2f s (%.2f..%.2f), records received after that: "
              "%.0f (median), shutdown after the last checkpoint %.2f s\n",
              start.median, start.min, start.max, summarize(left).median, summarize(stops).median);
  if (!steady.empty())
    std::printf(
      "         from the last start to the last checkpoint: %.1f M rec/s (%zu of %zu runs "
      "had records left)\n",
      summarize(steady).median, steady.size(), m.actors.size());
  std::printf("ROW\tactors-%s-start\t%.3f\t-\ts until %zu shard groups are up (records flow "
              "meanwhile)\t%.3f..%.3f\n",
              row_name(shards), start.median, shards, start.min, start.max);
}

// Runs one shard count and prints its rows; returns false (and prints FAILED lines instead of
// figures) when a run failed.
bool shard_count(const std::vector<record_batch>& batches, std::size_t shards, unsigned threads,
                 int runs, std::size_t target_records) {
  const auto per_shard = std::min(batches.size(),
                                  std::max<std::size_t>(4, target_records / batch_size / shards));
  const double records = static_cast<double>(per_shard * batch_size * shards);
  const auto m = measure(batches, per_shard, shards, threads, runs);
  if (!m.failure.empty()) {
    std::fprintf(stderr, "actors_bench: %zu shards: %s; no figure\n", shards, m.failure.c_str());
    std::printf("%-8zu FAILED: %s\n", shards, m.failure.c_str());
    std::printf("FAILED\tactors-%s\t%s\n", row_name(shards), m.failure.c_str());
    if (shards >= 1024)
      std::printf("FAILED\tactors-%s-start\t%s\n", row_name(shards), m.failure.c_str());
    return false;
  }
  std::vector<double> a;
  std::vector<double> d;
  for (std::size_t r = 0; r < m.actors.size(); ++r) {
    a.push_back(records / m.actors[r].seconds / 1e6);
    d.push_back(records / m.direct[r] / 1e6);
  }
  const auto sa = summarize(a);
  const auto sd = summarize(d);
  std::printf("%-8zu %8.1f (%5.1f..%5.1f)    %8.1f (%5.1f..%5.1f)    %6.2fx\n", shards, sa.median,
              sa.min, sa.max, sd.median, sd.min, sd.max, sa.median / sd.median);
  std::printf("POINT\t%zu\t%.2f\t%.2f\n", shards, sa.median, sd.median);
  if (shards >= 1024)
    startup_row(m, shards);
  if (shards >= 64) {
    const char* target = shards == 64 ? "M rec/s (target >= 20, >= 0.6x)"
                                      : (shards == 10000 ? "M rec/s, start-up included (>= 10)"
                                                         : "M rec/s, start-up included");
    std::printf("ROW\tactors-%s\t%.1f\t%.1f\t%s\t%.1f..%.1f\n", row_name(shards), sa.median,
                sd.median, target, sa.min, sa.max);
  }
  return true;
}

// The start-up row: 10,000 shard groups with one batch each (each starts, loads its checkpoint,
// attaches its feeder, takes its batch, checkpoints its end and stops), timed from spawning the
// tree until it has shut itself down; the root with parallel_start against the same tree starting
// its groups one handshake at a time (the design before it), alternating. (It once had to use one
// batch: with no records at all a group wrote its end marker twice, a bug fixed in the shard.)
bool startup_rows(const std::vector<record_batch>& batches, std::size_t shards, unsigned threads,
                  int runs) {
  std::vector<double> subject;
  std::vector<double> baseline;
  std::vector<double> up;
  for (int r = 0; r < runs; ++r) {
    for (bool parallel : {true, false}) {
      auto x = run_actors(batches, 1, shards, threads, parallel);
      if (!x.failure.empty()) {
        std::fprintf(stderr, "actors_bench: start-up of %zu groups (%s): %s; no figure\n", shards,
                     parallel ? "parallel" : "one at a time", x.failure.c_str());
        std::printf("FAILED\tstartup-10k\t%s\n", x.failure.c_str());
        return false;
      }
      (parallel ? subject : baseline).push_back(x.seconds);
      if (parallel)
        up.push_back(x.started);
    }
  }
  const auto s = summarize(subject);
  const auto b = summarize(baseline);
  std::printf("\nstart-up and shutdown of %zu shard groups of one batch: parallel_start %.3f s "
              "(every group up after %.3f s), one handshake at a time %.3f s\n",
              shards, s.median, summarize(up).median, b.median);
  std::printf("ROW\tstartup-10k\t%.3f\t%.3f\ts to start %zu shard groups and shut them down, vs. "
              "one handshake at a time (lower is better)\t%.3f..%.3f\n",
              s.median, b.median, shards, s.min, s.max);
  return true;
}

} // namespace

// Arguments: [records (4,000,000)] [runs (3)] [shards: only this one of 1, 64, 1024, 10000, or
// `startup`: only the startup-10k row]
int main(int argc, char** argv) {
  const std::size_t target_records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4'000'000;
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  const bool startup_only = argc > 3 && std::string{argv[3]} == "startup";
  const std::size_t only = startup_only ? 1 : argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::printf(
    "building %zu records (100-byte data, 56-digit sequence numbers, batches of %zu)...\n",
    target_records, batch_size);
  const auto batches = testing::make_batches(target_records, batch_size);
  std::printf(
    "\nshard actors vs. the direct loop; %u CAF worker threads; %d runs; median (min..max)\n\n",
    threads, runs);
  std::printf("%-8s %24s %24s %8s\n", "shards", "actors M rec/s", "direct loop M rec/s", "ratio");
  bool ok = true;
  for (std::size_t shards :
       {std::size_t{1}, std::size_t{64}, std::size_t{1024}, std::size_t{10000}}) {
    if (!startup_only && (only == 0 || shards == only))
      ok = shard_count(batches, shards, threads, runs, target_records) && ok;
  }
  if (startup_only || only == 0 || only == 10000)
    ok = startup_rows(batches, 10000, threads, runs) && ok;
  return ok ? 0 : 1;
}
