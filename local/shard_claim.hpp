// local/shard_claim.hpp - exclusive, crash-safe ownership of some shards of a local stream.
//
// Two jobs that read and checkpoint the same shard fence each other forever (each one's checkpoint
// is stale to the other) and write every record many times. A job therefore claims its shards before
// it starts them, and a second job on a claimed shard fails at once (errc::shard_owned, exit 4 from
// the CLI) instead of running beside the first.
//
// Mechanism: one lock file per shard, `<dir>/shard-00000.lock`, held with
// `flock(LOCK_EX | LOCK_NB)` for as long as the claim lives. It is not the shard file itself, whose
// `flock` is the writers' lock (local_stream.hpp). The kernel drops the lock when the owner process
// dies, however it dies: after `kill -9` (or a crash, or a power loss) a rerun takes the shards over
// at once; there is no lease to expire and nothing to clean up. The owner writes its pid, host and
// the time it claimed into the lock file so that a refused claim can name it; that text is advisory
// (the lock decides) and is emptied when the claim is released. The lock files stay in the
// directory (removing one would let two jobs lock two different files of one name).
//
//     job A: claim({0, 1})  -> holds shard-00000.lock, shard-00001.lock
//     job B: claim({2, 3})  -> holds shard-00002.lock, shard-00003.lock  (disjoint: both run)
//     job C: claim({1, 2})  -> errc::shard_owned "shard-00001 ... pid <A> ..." (holds nothing)
//     kill -9 A; job C: claim({0, 1}) -> succeeds at once
//
// A claim is all or none: when one shard is owned elsewhere, the locks already taken are released
// before the error is thrown. The lock belongs to the open file description: two claims of the same
// shard in one process exclude each other too, and a child forked (without exec) while a claim is
// alive shares it until the child exits; the descriptors are close-on-exec. `flock` is reliable on
// local file systems; on a network file system the stream should be used from one machine only.
// Not thread-safe per object; distinct objects may be used from distinct threads.
#pragma once

#include <cstddef>
#include <vector>

#include <shardflow/local/local_stream.hpp>

namespace shardflow::local {

/// Exclusive, crash-safe ownership of some shards of a local stream (see the file comment).
class shard_claims {
public:
  /// Claims every shard in `shards` of `stream`, all or none.
  /// @throws shardflow::error (errc::shard_owned) naming the first shard owned elsewhere, its
  ///   file, the owner's pid and start time when known, and what to do; errc::io_failed when
  ///   a claim file cannot be created; errc::bad_input for a shard the stream does not have.
  static shard_claims claim(const stream_dir& stream, const std::vector<std::size_t>& shards);

  /// An empty claim (holds nothing).
  shard_claims() = default;

  /// Releases the claims.
  ~shard_claims();

  shard_claims(shard_claims&& other) noexcept;
  shard_claims& operator=(shard_claims&& other) noexcept;
  shard_claims(const shard_claims&) = delete;
  shard_claims& operator=(const shard_claims&) = delete;

  /// Returns the shards held, in increasing order.
  const std::vector<std::size_t>& shards() const noexcept {
    return shards_;
  }

  /// Releases every claim now (the destructor does it otherwise).
  void release() noexcept;

private:
  std::vector<std::size_t> shards_;
  std::vector<int> fds_; // fds_[i] holds the lock of shards_[i]
};

/// Returns the claim file of shard `i` of `stream` (`<dir>/shard-00007.lock`).
std::filesystem::path claim_file(const stream_dir& stream, std::size_t i);

} // namespace shardflow::local
