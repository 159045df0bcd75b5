// flushers/io_pool.hpp - blocking sinks without a thread per shard: a bounded pool of I/O threads
// that writes the batches of many shards, and the flusher that hands its batches to it.
//
// A sink whose writes block (fdatasync, a database round trip) splits into a `batch_sink`: `append`
// formats a record into the bytes of the batch being built (on the shard's thread, cheap), `write`
// makes one sealed batch durable (on a pool thread, may block). A `pooled_flusher` owns one sink per
// shard and a lane in a shared `io_pool`:
//
//     add(x) --batch has room--> sink.append(x)                                   -> added
//            --batch full, fewer than max_in_flight sealed--> seal, append        -> added
//            --batch full, max_in_flight sealed and unwritten-->                   -> full
//     seal: the batch (bytes + tokens) joins the lane; a pool thread writes the lane's batches in
//           order, one at a time (a sink is never written by two threads at once); a sink that
//           `joins_batches` gets every batch waiting as one write (one sync for all of them)
//     heartbeat / flush(partial): the tokens of every batch written since the last call; a partial
//           flush also seals the current batch when there is room, and waits for one write to end
//           when the current batch is full and no batch has room (the `full` path)
//     flush(full): seals the current batch and waits until every sealed batch is written
//
// So the tokens of a batch come back once `write` has returned for it, never before (the contract of
// core/flusher.hpp allows them to come back late, from `heartbeat`). A shard holds at most
// `max_in_flight` sealed batches plus the one being built.
//
// Failure: when `write` throws, the lane drops its unwritten batches and the flusher's next call
// rethrows that exception (the shard fails; its restart replays from the checkpoint). Tokens of
// batches written before the failure that were not yet returned are lost with the incarnation,
// which is safe: they are after the checkpoint and are replayed.
//
// Threading: `append` runs on the shard's thread while `write` may be running on a pool thread, so
// `append` may only read state that `write` does not change (configuration). The flusher's
// destructor drops the batches not yet started, waits for the one being written (bounded by one
// write), then destroys the sink on the shard's thread. An `io_pool` is shared by the flushers of
// many shards (they hold it by `shared_ptr`); its destructor joins its threads, after every flusher
// using it is gone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <shardflow/core/flusher.hpp>

namespace shardflow {

/// Options of an I/O pool.
struct io_pool_config {
  /// Threads writing batches (at least 1).
  std::size_t threads = 4;
};

/// A fixed set of threads running jobs in the order they were submitted.
class io_pool {
public:
  explicit io_pool(io_pool_config cfg = {});
  /// Runs the jobs already queued, then joins the threads.
  ~io_pool();

  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  /// Queues `job` for the next free thread. A job must not throw.
  void submit(std::function<void()> job);

  /// Returns the number of threads.
  std::size_t threads() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The blocking half of a flusher: formats records, writes sealed batches. See the file comment.
class batch_sink {
public:
  virtual ~batch_sink();

  /// Appends record `x` to `batch`, the bytes of the batch being built. Runs on the shard's thread
  /// while `write` may run: may read only state that `write` leaves alone.
  /// @throws any std::exception (the shard fails).
  virtual void append(std::string& batch, const stream_record& x) = 0;

  /// Makes `batch` (`records` records, as built by `append`) durable. Runs on a pool thread, never
  /// concurrently with another `write` of this sink, in the order the batches were sealed.
  /// @throws any std::exception when the batch may not be durable (the shard fails).
  virtual void write(const std::string& batch, std::size_t records) = 0;

  /// Returns whether batches may be joined: when several sealed batches wait, `write` gets their
  /// bytes one after the other as one batch (their records summed), and all their tokens come
  /// back after that one write. Defaults to false (a sink that maps a batch to a transaction of
  /// its own, or counts them, keeps them apart).
  virtual bool joins_batches() const noexcept;
};

/// Options of a pooled flusher.
struct pooled_flusher_config {
  /// Records per batch.
  std::size_t batch_records = 1000;
  /// Sealed batches a shard may have waiting or being written; `add` answers `full` beyond.
  std::size_t max_in_flight = 2;
};

/// Makes the sink of one shard incarnation (may throw: that incarnation fails to start).
using batch_sink_factory = std::function<std::unique_ptr<batch_sink>(const shard_id&)>;

/// A flusher that hands its batches to an I/O pool; see the file comment.
class pooled_flusher final : public flusher {
public:
  pooled_flusher(std::shared_ptr<io_pool> pool, std::unique_ptr<batch_sink> sink,
                 pooled_flusher_config cfg);
  ~pooled_flusher() override;

  add_result add(const stream_record& x, flush_token token) override;
  std::vector<flush_token> flush(flush_mode mode) override;
  std::vector<flush_token> heartbeat() override;

  /// Returns the number of sealed batches not yet written.
  std::size_t in_flight() const;

  /// Returns a factory making a pooled flusher per shard around the sink `sinks` makes.
  static flusher_factory factory(std::shared_ptr<io_pool> pool, batch_sink_factory sinks,
                                 pooled_flusher_config cfg);

  struct lane;

private:
  void seal();
  std::vector<flush_token> reap();
  void wait_below(std::size_t limit);

  std::shared_ptr<io_pool> pool_;
  std::shared_ptr<lane> lane_;
  pooled_flusher_config cfg_;
  std::string batch_;
  std::vector<flush_token> tokens_;
};

} // namespace shardflow
