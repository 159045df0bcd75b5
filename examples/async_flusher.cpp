// examples/async_flusher.cpp - a flusher that writes on a worker thread of its own and hands its
// completions back from `heartbeat`, run on a runtime with a few shards.
//
// Why: a flusher that blocks in `flush` (fsync, a network round trip) stalls the cooperative
// scheduler thread its shard runs on. Detached shards fix that with a thread per shard; this
// flusher instead keeps the shard's calls short: `flush(partial)` only queues the batch for the
// writer and returns the batches finished so far, and `heartbeat` (called every
// `heartbeat_interval` on quiet shards too) returns what finished since. Only `flush(full)` (a
// stop, or a record that did not fit twice) waits for the writer.
//
//     shard thread:  add ... add | flush(partial) --> queue (at most `max_queued`) --> writer
//                    heartbeat / flush  <-- finished tokens <-- writer writes a batch to its file
//
// It checks the flusher with the conformance kit, then runs it on a runtime of three shards, each
// writing one file under a fresh temporary directory; it checks that every shard ended and
// checkpointed its end at its last record and that every record reached its file (at least once),
// and exits 1 otherwise.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <unistd.h>

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/flusher.hpp>
#include <shardflow/core/shard_meters.hpp>
#include <shardflow/flushers/conformance.hpp>

namespace {

namespace fs = std::filesystem;

/// Tunables of the asynchronous flusher.
struct async_flusher_config {
  /// Where each shard's file goes.
  fs::path dir;
  /// Records per batch; `add` answers `full` beyond.
  std::size_t batch_records = 200;
  /// Batches waiting for the writer; a partial flush keeps its batch while the queue is full.
  std::size_t max_queued = 4;
};

// One batch on its way to the file: the bytes to write and the tokens that become durable then.
struct job {
  std::string bytes;
  std::vector<shardflow::flush_token> tokens;
};

class async_flusher final : public shardflow::flusher {
public:
  async_flusher(const shardflow::shard_id& id, async_flusher_config cfg)
    : cfg_(std::move(cfg)), out_(cfg_.dir / (id + ".txt"), std::ios::app) {
    if (!out_)
      throw std::runtime_error("cannot open " + (cfg_.dir / (id + ".txt")).string());
    writer_ = std::thread{[this] { write_loop(); }};
  }

  // Stops the writer and drops what is still queued: those records are after the last checkpoint,
  // so the next incarnation replays them (see core/flusher.hpp, "Destruction").
  ~async_flusher() override {
    {
      std::lock_guard<std::mutex> guard{mx_};
      stopping_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    writer_.join();
  }

  shardflow::add_result add(const shardflow::stream_record& x, shardflow::flush_token t) override {
    if (batch_.tokens.size() >= cfg_.batch_records)
      return shardflow::add_result::full;
    batch_.bytes += x.partition_key;
    batch_.bytes += ' ';
    batch_.bytes += x.data; // copied: the writer outlives the shard's hold on the record
    batch_.bytes += '\n';
    batch_.tokens.push_back(t);
    return shardflow::add_result::added;
  }

  std::vector<shardflow::flush_token> flush(shardflow::flush_mode mode) override {
    std::unique_lock<std::mutex> lock{mx_};
    rethrow_failure();
    if (!batch_.tokens.empty()
        && (mode == shardflow::flush_mode::full || queue_.size() < cfg_.max_queued)) {
      if (mode == shardflow::flush_mode::full)
        cv_.wait(lock, [this] { return queue_.size() < cfg_.max_queued || failure_; });
      queue_.push_back(std::exchange(batch_, {}));
      cv_.notify_all();
    }
    if (mode == shardflow::flush_mode::full) {
      cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || failure_; });
      rethrow_failure();
    }
    return std::exchange(done_, {});
  }

  std::vector<shardflow::flush_token> heartbeat() override {
    std::lock_guard<std::mutex> guard{mx_};
    rethrow_failure();
    return std::exchange(done_, {});
  }

private:
  // The writer thread: one batch at a time, outside the lock.
  void write_loop() {
    std::unique_lock<std::mutex> lock{mx_};
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_)
        return;
      auto next = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      out_.write(next.bytes.data(), static_cast<std::streamsize>(next.bytes.size()));
      out_.flush(); // a real flusher syncs here (fsync, or the remote store's acknowledgement)
      const bool ok = static_cast<bool>(out_);
      lock.lock();
      busy_ = false;
      if (!ok)
        failure_ = true;
      else
        done_.insert(done_.end(), next.tokens.begin(), next.tokens.end());
      cv_.notify_all();
    }
  }

  // Reports a failed write on the shard's thread, where throwing fails the shard.
  void rethrow_failure() const {
    if (failure_)
      throw std::runtime_error("async flusher: a write failed");
  }

  async_flusher_config cfg_;
  std::ofstream out_; // used by the writer thread only (after construction)
  job batch_;         // the shard's thread only
  std::mutex mx_;     // guards what follows
  std::condition_variable cv_;
  std::deque<job> queue_;
  std::vector<shardflow::flush_token> done_;
  bool busy_ = false;
  bool failure_ = false;
  bool stopping_ = false;
  std::thread writer_; // last: started once everything above exists
};

constexpr int shards = 3;
constexpr std::uint64_t records = 20'000;

shardflow::record_batch make_batch(std::uint64_t first, std::uint64_t n) {
  std::vector<shardflow::stream_record> xs(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    xs[i].partition_key = "k" + std::to_string((first + i) % 31);
    xs[i].data = "record " + std::to_string(first + i);
    xs[i].sequence.base = shardflow::sequence_base{first + i};
  }
  return shardflow::record_batch{std::move(xs)};
}

// Starts the shards, pushes every record, ends the input and waits for the runtime to end.
bool run(shardflow::runtime& rt, const async_flusher_config& fcfg, caf::actor_system& sys) {
  for (int s = 0; s < shards; ++s) {
    shardflow::shard_group_config g;
    g.shard.id = "async-" + std::to_string(s);
    g.shard.make_flusher = [fcfg](const shardflow::shard_id& id) {
      return std::make_unique<async_flusher>(id, fcfg);
    };
    g.shard.heartbeat_interval = std::chrono::milliseconds(10); // completions come back here
    g.shard.batch.flush_interval = std::chrono::milliseconds(20);
    g.shard.batch.checkpoint_interval = std::chrono::milliseconds(20);
    g.finite = true;
    if (auto err = rt.start_shard(g)) {
      std::fprintf(stderr, "async_flusher: start_shard: %s\n", sys.render(err).c_str());
      return false;
    }
  }
  for (std::uint64_t first = 0; first < records; first += 250)
    for (int s = 0; s < shards; ++s)
      if (auto err = rt.push("async-" + std::to_string(s), make_batch(first, 250))) {
        std::fprintf(stderr, "async_flusher: push: %s\n", sys.render(err).c_str());
        return false;
      }
  for (int s = 0; s < shards; ++s)
    rt.end("async-" + std::to_string(s));
  auto outcome = rt.await(std::chrono::seconds(60));
  if (!outcome.ended) {
    std::fprintf(stderr, "async_flusher: the shards did not finish within a minute\n");
    return false;
  }
  bool all_ended = true;
  for (auto& s : outcome.shards) {
    std::printf("%s: %s%s%s\n", s.id.c_str(), shardflow::to_string(s.outcome),
                s.reason.empty() ? "" : ": ", s.reason.c_str());
    all_ended = all_ended && s.outcome == shardflow::shard_outcome::ended;
  }
  if (!outcome.clean() || !all_ended || outcome.shards.size() != shards) {
    std::fprintf(stderr, "async_flusher: the runtime failed: %s\n",
                 outcome.reason ? sys.render(outcome.reason).c_str() : "a shard did not end");
    return false;
  }
  return true;
}

// Every shard checkpointed its end at its last record, and its file holds every record.
bool check(const shardflow::memory_checkpoint_store& store, const fs::path& dir) {
  bool ok = true;
  for (int s = 0; s < shards; ++s) {
    const auto id = "async-" + std::to_string(s);
    auto row = store.peek(id);
    std::ifstream in{dir / (id + ".txt")};
    std::uint64_t lines = 0;
    for (std::string line; std::getline(in, line);)
      ++lines;
    const bool at_end = row && row->ended && row->position
                        && row->position->base == shardflow::sequence_base{records - 1};
    std::printf("%s: checkpoint %s%s, %llu lines written\n", id.c_str(),
                row && row->position ? shardflow::to_string(*row->position).c_str() : "none",
                row && row->ended ? " (ended)" : "", static_cast<unsigned long long>(lines));
    ok = ok && at_end && lines >= records;
  }
  return ok;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  shardflow::configure(cfg);
  caf::actor_system sys{cfg};
  async_flusher_config fcfg;
  fcfg.dir = fs::temp_directory_path() / ("shardflow-async-example-" + std::to_string(::getpid()));
  fs::remove_all(fcfg.dir);
  fs::create_directories(fcfg.dir);
  auto store = std::make_shared<shardflow::memory_checkpoint_store>();
  shardflow::runtime_config rcfg;
  rcfg.finite = true;
  rcfg.sink = shardflow::spawn_checkpoint_sink(sys, store);
  // First the contract, in one line (flushers/conformance.hpp), in a directory of its own.
  auto kit_cfg = fcfg;
  kit_cfg.dir /= "kit";
  fs::create_directories(kit_cfg.dir);
  const auto kit = shardflow::check_flusher_contract([kit_cfg](const shardflow::shard_id& id) {
    return std::make_unique<async_flusher>(id, kit_cfg);
  });
  std::printf("conformance kit: %s", kit.summary().c_str());
  bool ok = false;
  if (!kit.ok())
    std::fprintf(stderr, "async_flusher: the flusher breaks its contract\n");
  else if (auto rt = shardflow::runtime::start(sys, rcfg))
    ok = run(**rt, fcfg, sys) && check(*store, fcfg.dir);
  else
    std::fprintf(stderr, "async_flusher: %s\n", sys.render(rt.error()).c_str());
  fs::remove_all(fcfg.dir);
  std::printf("%s\n", ok ? "every shard checkpointed at its last record" : "FAILED");
  return ok ? 0 : 1;
}
