// core/checkpoint_tracker.hpp - which record a shard may checkpoint at, in O(1) per token.
//
// The batch processor hands every record it offers a token: its position 0, 1, 2, ... in the shard.
// A record is *done* when the flusher returned its token (it is durable) or when the flusher ignored
// it. The shard may checkpoint at record k only when records 0..k are all done, and only at a record
// that is a checkpoint position (not a KPL sub-record, unless sub-sequence checkpoints are enabled):
//
//     position:      0  1  2  3  4  5  6  7  8  9
//     done:          *  *  *     *  *     *
//                          ^ candidate: records 0..2 done; 4, 5 and 7 wait for 3
//                             ^ next_ (first position not done)
//
// erlmld keeps every done token, with a copy of its sequence number, in a balanced tree until the next
// checkpoint (its main cost). This tracker keeps a ring of the positions from the current candidate up
// to the newest issued one, each a pointer to the record's sequence number and a done flag; `next_`
// moves over done entries as they become contiguous, so each token costs O(1) amortised and memory is
// bounded by the out-of-order window (issued - candidate), not by the records since the last
// checkpoint. Sequence numbers are never copied per record: the tracker holds the `record_batch`es
// its positions point into and lets each go once the candidate has moved past it. Completing a token
// touches only the ring; the candidate is settled lazily (when asked for, or when the ring fills) by
// looking back from `next_` for the last checkpoint position, which usually reads one sequence number
// per settle instead of one per record, and a sequence number is copied only when a checkpoint is
// taken.
//
// Plain class, single-threaded, no clock: owned by one batch processor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// Tracks done positions and the furthest position a checkpoint may move to.
class checkpoint_tracker {
public:
  /// Creates an empty tracker; the first position issued is 0. With `subsequence_checkpoints`, a user
  /// record inside a KPL aggregate is a checkpoint position too.
  explicit checkpoint_tracker(bool subsequence_checkpoints = false);

  /// Returns the token the next record will get.
  flush_token next_token() const noexcept {
    return issued_;
  }

  /// Announces that the next records issued live in `batch`; the tracker keeps it alive as long as a
  /// checkpoint may still land on one of them.
  void hold(record_batch batch);

  /// Registers the record at position `next_token()`; `done` is true for a record the flusher ignored.
  /// @pre `seq` lives in the batch last passed to `hold` (or outlives the tracker).
  void issue(const sequence_number& seq, bool done) {
    if (issued_ - low_ == ring_.size())
      make_room();
    at(issued_) = entry{&seq, done};
    if (!done)
      ++outstanding_;
    if (issued_++ == next_ && done)
      ++next_;
  }

  /// Marks the record of `token` as durable.
  /// @throws shardflow::error with errc::unknown_token for a token never issued, or
  ///         errc::duplicate_token for one already done.
  void complete(flush_token token) {
    if (token >= issued_ || token < next_ || at(token).done)
      reject(token);
    at(token).done = true;
    --outstanding_;
    if (token == next_)
      while (next_ < issued_ && at(next_).done)
        ++next_;
  }

  /// Returns whether a checkpoint now would move past the last one taken.
  bool can_advance() noexcept {
    settle();
    return has_candidate_ && (!has_taken_ || candidate_ > taken_);
  }

  /// Takes a checkpoint: returns the sequence number of the furthest checkpointable position whose
  /// record and every record before it are done.
  /// @pre `can_advance()` returned true
  const sequence_number& take() noexcept;

  /// Returns how many issued records are not done yet.
  std::size_t outstanding() const noexcept {
    return outstanding_;
  }

  /// Returns how many positions the tracker holds (its memory, in entries).
  std::size_t window() const noexcept {
    return static_cast<std::size_t>(issued_ - low_);
  }

  /// Returns the ring capacity in entries.
  std::size_t capacity() const noexcept {
    return ring_.size();
  }

  /// Returns how many record batches the tracker keeps alive.
  std::size_t batches_held() const noexcept {
    return batches_.size();
  }

private:
  struct entry {
    const sequence_number* seq = nullptr;
    bool done = false;
  };

  entry& at(std::uint64_t pos) noexcept {
    return ring_[pos & mask_];
  }

  bool checkpointable(std::uint64_t pos) noexcept {
    return subsequence_checkpoints_ || !at(pos).seq->is_sub_record();
  }

  void settle() noexcept;
  void make_room();
  [[noreturn]] void reject(flush_token token) const;

  std::vector<entry> ring_;
  std::uint64_t mask_;
  std::uint64_t low_ = 0;     // oldest position held: the candidate, or 0 before the first one
  std::uint64_t next_ = 0;    // first position that is not done
  std::uint64_t settled_ = 0; // positions below this were considered for the candidate
  std::uint64_t issued_ = 0;  // next position to hand out
  std::uint64_t candidate_ = 0;
  std::uint64_t taken_ = 0;
  bool has_candidate_ = false;
  bool has_taken_ = false;
  bool subsequence_checkpoints_;
  std::size_t outstanding_ = 0;
  std::deque<std::pair<std::uint64_t, record_batch>> batches_; // first position in each, in order
};

} // namespace shardflow
