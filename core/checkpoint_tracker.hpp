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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <shardflow/core/fifo.hpp>
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
    if (issued_ - low_ == seq_.size())
      make_room(1);
    seq_[issued_ & mask_] = reinterpret_cast<std::uintptr_t>(&seq);
    done_[issued_ & mask_] = static_cast<std::uint8_t>(has_address | (done ? done_flag : 0));
    if (!done)
      ++outstanding_;
    if (issued_++ == next_ && done)
      ++next_;
  }

  /// Registers `n` records the flusher added at positions `next_token()`, ...: the run form of
  /// `issue(x.sequence, false)`, with no address stored per record.
  /// @pre they are the next `n` records, in order, of the batch last passed to `hold`, whose
  ///      records all get their positions in order from the one `hold` saw (as the processor does).
  void issue_added(std::size_t n) {
    if (issued_ - low_ + n > seq_.size())
      make_room(n);
    // No address per record: a run's positions find their records through the batches held
    // (seq_at). Only their flags are cleared (not done, no address), in at most two stretches.
    for (std::size_t done = 0; done < n;) {
      const auto at = static_cast<std::size_t>((issued_ + done) & mask_);
      const auto stretch = std::min(n - done, done_.size() - at);
      std::fill_n(done_.data() + at, stretch, std::uint8_t{0});
      done += stretch;
    }
    issued_ += n;
    outstanding_ += n;
  }

  /// Marks the record of `token` as durable.
  /// @throws shardflow::error with errc::unknown_token for a token never issued, or
  ///         errc::duplicate_token for one already done.
  void complete(flush_token token) {
    if (token >= issued_ || token < next_ || (done_[token & mask_] & done_flag) != 0)
      reject(token);
    done_[token & mask_] |= done_flag;
    --outstanding_;
    if (token == next_)
      while (next_ < issued_ && (done_[next_ & mask_] & done_flag) != 0)
        ++next_;
  }

  /// Marks the records of `tokens[0..n)` as durable: `complete` for each, with a fast path for
  /// tokens that continue the contiguous prefix in order (what a flusher usually returns).
  /// @throws as `complete`; the tokens before the bad one are completed.
  void complete(const flush_token* tokens, std::size_t n) {
    // In order from next_ (never done itself; later ones may be: ignored records). The flags
    // below next_ are never read again, so the prefix moves without writing them.
    const auto in_order = complete_in_order(tokens, n);
    outstanding_ -= in_order;
    next_ += in_order;
    while (next_ < issued_ && (done_[next_ & mask_] & done_flag) != 0)
      ++next_;
    for (auto i = in_order; i < n; ++i)
      complete(tokens[i]);
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
    return seq_.size();
  }

  /// Returns how many record batches the tracker keeps alive.
  std::size_t batches_held() const noexcept {
    return batches_.size();
  }

private:
  // How many of `tokens` are next_, next_ + 1, ... with their records issued and not done.
  std::size_t complete_in_order(const flush_token* tokens, std::size_t n) const noexcept {
    const auto limit = static_cast<std::size_t>(std::min<std::uint64_t>(n, issued_ - next_));
    std::size_t i = 0;
    // Eight at a time (branch-free, so the compiler vectorises it) while their flags are in one
    // stretch of the ring.
    while (i + 8 <= limit && ((next_ + i) & mask_) + 8 <= done_.size()) {
      const auto base = next_ + i;
      std::uint64_t differ = 0;
      for (std::size_t j = 0; j < 8; ++j)
        differ |= tokens[i + j] ^ (base + j);
      std::uint64_t flags = 0;
      std::memcpy(&flags, done_.data() + (base & mask_), sizeof flags);
      if ((differ | (flags & 0x0101010101010101u)) != 0) // done_flag of each
        break;
      i += 8;
    }
    while (i < limit && tokens[i] == next_ + i && (done_[(next_ + i) & mask_] & done_flag) == 0)
      ++i;
    return i;
  }

  bool checkpointable(std::uint64_t pos) noexcept {
    return subsequence_checkpoints_ || !seq_at(pos).is_sub_record();
  }

  // The sequence number at `pos` (held: pos >= low_): its address, or for a run's position (0)
  // the record in the batch that holds it, usually the last.
  const sequence_number& seq_at(std::uint64_t pos) const noexcept {
    if ((done_[pos & mask_] & has_address) != 0)
      return *reinterpret_cast<const sequence_number*>(seq_[pos & mask_]);
    auto i = batches_.size();
    while (batches_[--i].first > pos) {
      // nop
    }
    return batches_[i].second[static_cast<std::size_t>(pos - batches_[i].first)].sequence;
  }

  void settle() noexcept;
  void make_room(std::size_t n = 1); // until `n` more positions fit
  [[noreturn]] void reject(flush_token token) const;

  // The ring, in two arrays indexed by position & mask_: each position's flags (done_flag: its
  // record is done, read only from next_ on; has_address: seq_ holds the address of its sequence
  // number, else it is a run's and found in the batches held, see seq_at) and that address.
  static constexpr std::uint8_t done_flag = 1;
  static constexpr std::uint8_t has_address = 2;
  std::vector<std::uintptr_t> seq_;
  std::vector<std::uint8_t> done_;
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
  fifo<std::pair<std::uint64_t, record_batch>> batches_; // first position in each, in order
};

} // namespace shardflow
