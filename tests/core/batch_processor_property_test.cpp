// Property test of the batch processor against a reference model, on seeded random runs.
//
// A random flusher takes or ignores records, answers `full` at a random capacity, returns random
// subsets of its tokens in random order on partial flushes and heartbeats, and everything on full
// flushes. Time jumps at random. The model records, per token, whether its record is done (durable or
// ignored) and whether it is a checkpoint position, and checks every checkpoint the processor returns:
// - it never passes a record that is not done;
// - it is the furthest checkpoint the model allows (nothing durable is left behind);
// - it never goes backwards;
// - after `terminate` the shard is checkpointed at its last checkpointable record.
#include <shardflow/core/batch_processor.hpp>

#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

using namespace shardflow;
using namespace std::chrono_literals;

namespace {

struct model {
  std::vector<sequence_number> seqs; // per token
  std::vector<bool> checkpointable;
  std::vector<bool> done;

  // The furthest checkpointable position whose record and all before it are done.
  std::optional<std::size_t> furthest() const {
    std::optional<std::size_t> result;
    for (std::size_t i = 0; i < done.size() && done[i]; ++i)
      if (checkpointable[i])
        result = i;
    return result;
  }

  std::size_t position_of(const sequence_number& s) const {
    auto i = std::lower_bound(seqs.begin(), seqs.end(), s) - seqs.begin();
    REQUIRE(static_cast<std::size_t>(i) < seqs.size());
    REQUIRE(seqs[i] == s);
    return static_cast<std::size_t>(i);
  }
};

class random_flusher final : public flusher {
public:
  random_flusher(std::mt19937_64& rng, model& m, bool subseq)
    : rng_(rng), m_(m), subseq_(subseq), capacity_(1 + rng() % 40) {
    // nop
  }

  add_result add(const stream_record& x, flush_token token) override {
    if (pending_.size() >= capacity_)
      return add_result::full;
    REQUIRE(token == m_.seqs.size()); // tokens are handed out in order, one per record
    const bool ignore = rng_() % 10 == 0;
    m_.seqs.push_back(x.sequence);
    m_.checkpointable.push_back(subseq_ || !x.sequence.is_sub_record());
    m_.done.push_back(ignore);
    if (ignore)
      return add_result::ignored;
    pending_.push_back(token);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    return mode == flush_mode::full ? take(pending_.size()) : take(rng_() % (pending_.size() + 1));
  }

  std::vector<flush_token> heartbeat() override {
    return rng_() % 3 == 0 ? take(rng_() % (pending_.size() + 1)) : std::vector<flush_token>{};
  }

private:
  std::vector<flush_token> take(std::size_t n) {
    std::shuffle(pending_.begin(), pending_.end(), rng_);
    std::vector<flush_token> result(pending_.end() - static_cast<std::ptrdiff_t>(n),
                                    pending_.end());
    pending_.resize(pending_.size() - n);
    for (auto t : result)
      m_.done[t] = true;
    return result;
  }

  std::mt19937_64& rng_;
  model& m_;
  bool subseq_;
  std::size_t capacity_;
  std::vector<flush_token> pending_;
};

struct run_result {
  std::size_t operations = 0;
  std::size_t checkpoints = 0;
};

run_result run_once(std::uint64_t seed, std::size_t operations) {
  std::mt19937_64 rng{seed};
  model m;
  const bool subseq = rng() % 4 == 0;
  batch_config cfg;
  cfg.flush_interval = std::chrono::milliseconds(rng() % 50);
  cfg.checkpoint_interval = std::chrono::milliseconds(rng() % 50);
  cfg.enable_subsequence_checkpoints = subseq;
  auto now = batch_processor::time_point{} + 1h;
  batch_processor p{"prop", std::make_unique<random_flusher>(rng, m, subseq), cfg, now};
  std::uint64_t next_base = 1000;
  std::optional<std::size_t> last; // position of the last checkpoint returned
  run_result result;
  auto check = [&](const std::optional<checkpoint>& cp) {
    if (!cp)
      return;
    REQUIRE(cp->position.has_value());
    auto pos = m.position_of(*cp->position);
    for (std::size_t i = 0; i <= pos; ++i)
      REQUIRE(m.done[i]); // never passes a record that is not durable
    REQUIRE(m.checkpointable[pos]);
    REQUIRE(m.furthest() == pos); // nothing durable is left behind
    if (last)
      REQUIRE(pos > *last); // never goes backwards (and never repeats)
    last = pos;
    ++result.checkpoints;
  };
  for (; result.operations < operations; ++result.operations) {
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {
        std::vector<stream_record> batch(rng() % 20);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          auto& x = batch[i];
          x.sequence.base = sequence_base{next_base};
          if (rng() % 5 == 0 && i + 3 < batch.size()) { // a KPL aggregate of 3 user records
            for (std::uint32_t k = 0; k < 3; ++k) {
              batch[i + k].sequence.base = sequence_base{next_base};
              batch[i + k].sequence.user_sub = k;
              batch[i + k].sequence.user_total = 3;
            }
            i += 2;
          }
          ++next_base;
        }
        check(p.process(record_batch{std::move(batch)}, now));
        break;
      }
      case 3:
        check(p.heartbeat(now));
        break;
      case 4:
        check(p.flush(rng() % 4 == 0 ? flush_mode::full : flush_mode::partial, now));
        break;
      default:
        now += std::chrono::milliseconds(rng() % 30);
    }
  }
  auto final_cp = p.shutdown(shutdown_reason::terminate, now);
  REQUIRE(final_cp.has_value());
  std::optional<std::size_t> last_checkpointable;
  for (std::size_t i = 0; i < m.seqs.size(); ++i)
    if (m.checkpointable[i])
      last_checkpointable = i;
  if (final_cp->position) {
    check(final_cp);
    REQUIRE(last == last_checkpointable);
  } else {
    REQUIRE(last == last_checkpointable); // already checkpointed there, or no such record
  }
  REQUIRE(p.stats().outstanding == 0);
  return result;
}

} // namespace

SCENARIO("random flush orders never let a checkpoint pass a record that is not durable",
         "[actors][batch_processor][property]") {
  std::size_t operations = 0;
  std::size_t checkpoints = 0;
  std::uint64_t seed = 1;
  for (; operations < 100000; ++seed) {
    INFO("seed " << seed);
    auto r = run_once(seed, 500);
    operations += r.operations;
    checkpoints += r.checkpoints;
  }
  INFO("runs " << seed - 1 << ", checkpoints " << checkpoints);
  CHECK(checkpoints > 1000); // the runs did exercise checkpointing
}
