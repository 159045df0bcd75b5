// core/record_source.hpp - where a shard's records come from, and the replay buffer for engines
// that push.
//
// A crashed shard actor's mailbox is gone, so every record it had not checkpointed must come again
// to its next incarnation. One interface covers both kinds of engine:
//
// - a *replayable* source (a file, a Kafka partition, a generator) reads from storage and rewinds
//   by seeking: it keeps nothing in memory beyond the batch it hands out;
// - an engine that *pushes* (the KCL daemon, a host application calling `push`) appends to a
//   `replay_buffer`, which keeps every record not yet covered by an acknowledged checkpoint and
//   replays them, in order, after a rewind. Its memory is bounded by the feeder's push limit: a
//   producer waits while the buffer is over it (see actors/feeder.hpp).
//
// A source is owned by one feeder actor and called from it only (no locks). Each feeder incarnation
// gets a fresh source from a `source_factory`. A source reports failure by throwing; the feeder then
// fails and its supervisor restarts it together with its shard.
//
//     shard incarnation starts --attach(checkpoint)--> feeder: source.rewind(checkpoint)
//     shard demands n          --------------------->  feeder: source.read(<= n) --> records
//     sink acknowledged cp     --acked(cp)---------->  feeder: source.release(cp)
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include <shardflow/core/fifo.hpp>
#include <shardflow/core/record.hpp>

namespace shardflow {

/// The records of one shard, readable from any checkpoint on.
class record_source {
public:
  virtual ~record_source();

  /// Positions the source at the first record after `after`, or at its start when `after` is empty.
  /// Called each time a shard incarnation attaches, with its last durable checkpoint.
  virtual void rewind(const std::optional<sequence_number>& after) = 0;

  /// Returns up to `max` of the next records; an empty batch when none is available now.
  virtual record_batch read(std::size_t max) = 0;

  /// Returns whether no record will ever follow the ones read (finite input read to its end).
  virtual bool at_end() const = 0;

  /// Returns whether the source stopped before the end of its input (for instance at a bad line
  /// under a stop policy): `at_end` is true too, but the shard must not checkpoint its end, so a
  /// rerun resumes before the line that stopped it. Defaults to false.
  virtual bool stopped() const;

  /// Everything up to and including `upto` is durably checkpointed; the source may forget it.
  virtual void release(const sequence_number& upto);

  /// Asks the source to call `wake` when records may be there again after a `read` found none, so
  /// they leave at once instead of at the feeder's next poll (poll_interval stays the fallback). A
  /// source with such a signal (a Kafka partition queue) may call `wake` from any thread, at any
  /// time, until it is destroyed or asked again; a source without one ignores it (the default).
  /// Called by each feeder incarnation once the source is made.
  virtual void on_readable(std::function<void()> wake);
};

/// Makes the record source of one feeder incarnation.
using source_factory = std::function<std::shared_ptr<record_source>()>;

/// A record source fed by pushes, which keeps what is not yet checkpointed for replay. Records must
/// come in increasing sequence-number order (the feeder refuses others). A buffer may outlive the
/// feeders that read it (one after the other, never two at once), so that what a dead feeder held
/// is replayed by the next. Records at or before the latest checkpoint it has seen (`rewind`'s
/// `after`, `release`'s `upto`) are durable: appending them again drops them, so a host that pushes
/// from its own start after a restart does not hand its flusher what the store already covers.
class replay_buffer final : public record_source {
public:
  /// Appends `batch` (records in order, after every record appended before), without the records
  /// at or before the latest checkpoint seen.
  void append(record_batch batch);

  /// Marks the end of input: after the records appended, `at_end` turns true.
  void close() noexcept {
    closed_ = true;
  }

  /// Returns the number of records kept (not yet released).
  std::size_t retained() const noexcept {
    return retained_;
  }

  /// Returns the payload bytes of the records kept.
  std::size_t retained_bytes() const noexcept {
    return retained_bytes_;
  }

  /// Returns the sequence number of the last record appended and still kept, if any.
  std::optional<sequence_number> last() const {
    if (batches_.empty())
      return std::nullopt;
    return batches_.back().back().sequence;
  }

  void rewind(const std::optional<sequence_number>& after) override;
  record_batch read(std::size_t max) override;
  bool at_end() const override;
  void release(const sequence_number& upto) override;

private:
  void cover(const sequence_number& upto);

  std::optional<sequence_number> covered_; // the latest checkpoint seen: durable up to here
  fifo<record_batch> batches_;
  std::size_t batch_ = 0;  // read cursor: index into batches_
  std::size_t offset_ = 0; // ... and record inside it
  std::size_t retained_ = 0;
  std::size_t retained_bytes_ = 0;
  bool closed_ = false;
};

} // namespace shardflow
