// postgres/group_commit.hpp - many shards' batches in one transaction: the writers that arrive
// while a transaction is being written wait, and the next transaction takes all of their batches.
//
// Each committed transaction costs the server a WAL flush (an fsync under synchronous_commit on)
// and a COPY round trip; with 64 shards writing batches of 1,000 those dominate (bench/pg_bench.sh:
// 200 transactions of 1,000 rows took 3.8 s in one psql session, one \copy of the same 200,000
// rows 0.9 s). So a pool thread that must write a batch (postgres_sink::write) hands it here:
//
//     write(batch): queue it; then, until it is done:
//        fewer than `writers` groups being written and batches queued -> lead: take up to
//            `max_batches` queued batches (the oldest first, this thread's own among them or not),
//            write them with `write_group` in one transaction, mark each done, wake the waiting
//        else wait until a group ends
//     done: written -> write returns true
//           its group failed -> a group of one rethrows the failure (the caller retries);
//                               a larger group returns false: the caller writes the batch alone,
//                               so a row the table refuses fails only the shard it belongs to
//
// A batch is acknowledged (write returns) only after the transaction holding it has committed, so
// the flusher contract (tokens after durability) holds. Threading: write is called from many
// threads at once (the I/O pool's); at most `writers` of them write (each on a connection of its
// own), the others block in write until their batch is done. `write_group` runs without the lock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace shardflow::postgres {

/// Options of a group commit.
struct group_commit_config {
  /// Groups written at once (each a transaction on a connection of its own; at least 1).
  std::size_t writers = 2;
  /// Batches per group at most (at least 1).
  std::size_t max_batches = 64;
};

/// Writes the batches of concurrent callers together; see the file comment.
class group_commit {
public:
  /// Writes the batches (formatted rows, in order) in one transaction; throws on failure.
  using group_writer = std::function<void(const std::vector<const std::string*>& batches)>;

  group_commit(group_writer write_group, group_commit_config cfg = {});

  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  /// Returns true once `batch` has been written in a group; false when its group (of more than
  /// one batch) failed and the caller should write it alone. @throws what `write_group` threw when
  ///         the batch was alone in its group.
  bool write(const std::string& batch);

  /// Returns the number of groups written so far (committed or failed).
  std::size_t groups() const;

  /// Returns the number of batches waiting for a group.
  std::size_t queued() const;

private:
  struct job {
    const std::string* batch = nullptr;
    bool done = false;
    bool failed = false;
    std::exception_ptr error; // set when it failed alone
  };

  void lead(std::unique_lock<std::mutex>& guard);

  group_writer write_group_;
  group_commit_config cfg_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job*> queued_;
  std::size_t writing_ = 0;
  std::size_t groups_ = 0;
};

} // namespace shardflow::postgres
