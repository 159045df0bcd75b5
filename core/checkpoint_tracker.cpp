#include <shardflow/core/checkpoint_tracker.hpp>

#include <utility>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

constexpr std::size_t initial_capacity = 16;

} // namespace

checkpoint_tracker::checkpoint_tracker(bool subsequence_checkpoints)
  : seq_(initial_capacity),
    done_(initial_capacity),
    mask_(initial_capacity - 1),
    subsequence_checkpoints_(subsequence_checkpoints) {
  // nop
}

void checkpoint_tracker::hold(record_batch batch) {
  if (!batch.empty())
    batches_.emplace_back(issued_, std::move(batch));
}

void checkpoint_tracker::make_room(std::size_t n) {
  settle();
  if (issued_ - low_ + n <= seq_.size())
    return;
  auto size = seq_.size() * 2;
  while (issued_ - low_ + n > size)
    size *= 2;
  std::vector<std::uintptr_t> seqs(size);
  std::vector<std::uint8_t> done(size);
  const auto new_mask = size - 1;
  for (auto pos = low_; pos < issued_; ++pos) {
    seqs[pos & new_mask] = seq_[pos & mask_];
    done[pos & new_mask] = done_[pos & mask_];
  }
  seq_.swap(seqs);
  done_.swap(done);
  mask_ = new_mask;
}

void checkpoint_tracker::reject(flush_token token) const {
  if (token >= issued_)
    throw error{errc::unknown_token,
                fmt::format("the flusher returned token {}, which was never handed out (the next "
                            "token is {})",
                            token, issued_)};
  throw error{errc::duplicate_token, fmt::format("the flusher returned token {} twice", token)};
}

const sequence_number& checkpoint_tracker::take() noexcept {
  taken_ = candidate_;
  has_taken_ = true;
  return seq_at(candidate_);
}

void checkpoint_tracker::settle() noexcept {
  // The new candidate is the last checkpointable position of [settled_, next_); looking from its end
  // usually reads one sequence number instead of one per record.
  const auto first = settled_;
  settled_ = next_;
  for (auto pos = next_; pos > first;) {
    if (checkpointable(--pos)) {
      candidate_ = pos;
      has_candidate_ = true;
      low_ = pos; // positions below the candidate can never be checkpointed at again
      break;
    }
  }
  while (batches_.size() > 1 && batches_[1].first <= low_)
    batches_.pop_front();
}

} // namespace shardflow
