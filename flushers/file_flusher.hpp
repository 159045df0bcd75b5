// flushers/file_flusher.hpp - writes each shard's records to files of its own, synced before the
// tokens come back.
//
// Records are appended to `<dir>/<name>-<nnnnnn>.ndjson` as record lines (flushers/record_line.hpp,
// the local stream's format), where `<name>` is `file_name_of(shard)`: a shard id never names a
// path outside `dir`. A flush writes the whole batch with one write and `fdatasync`s the file; only
// then are the batch's tokens returned, so a checkpoint never passes a record that is not on disk. A
// write that fails is cut off again (the file ends in a whole line). A new file is started once the
// current one passes `roll_bytes` or is older than `roll_age` (checked at each flush); a new file's
// directory entry is synced before its first records count as durable.
//
// One writer per file. A flusher holds `flock(LOCK_EX)` on the file it writes for as long as it
// writes it (the lock dies with the process, so a killed writer leaves no stale lock):
//
//     open: every file of the shard that ends inside a line and whose lock is free: cut its torn
//           last line (left by a dead writer; two incarnations that die together leave two)
//           newest file of the shard --lock taken--> continue it
//                                    --lock held by a live writer (two incarnations during a lease
//                                      handover)--> next index, created with O_EXCL (EEXIST: the
//                                      next again), locked (held: the next again)
//     roll: the next file is created and locked first, then the current one is closed
//
// So a new incarnation appends the replayed records to the file its dead predecessor wrote
// (at-least-once: duplicates are possible after the last checkpoint, losses are not), and never
// touches a file another live writer owns, in this process or another.
//
// The writing is `file_sink` (a batch_sink, flushers/io_pool.hpp). `file_flusher` writes on the
// caller's thread: it blocks on the disk for the sync, so its shard runs detached (actors/shard.hpp)
// or one CAF worker waits per flush. With `file_flusher_config::pool` set, the factory makes pooled
// flushers instead: the shard formats the lines, a thread of the shared I/O pool writes and syncs
// them, and the tokens come back from a later heartbeat or flush; no shard needs a thread. When
// the disk falls behind, the batches of a shard waiting on the pool are written and synced as
// one (`joins_batches`): the tokens of all of them come back after that one fdatasync.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include <shardflow/core/flusher.hpp>
#include <shardflow/flushers/io_pool.hpp>

namespace shardflow {

/// Returns the file name that stands for shard `id`: the id itself when it is made of A-Z a-z 0-9
/// '_' '-' and '.' (not leading); otherwise each other byte, a leading '.' and '%' as `%XX`
/// (upper-case hex), and the empty id as "%". Distinct ids give distinct names; none has a '/' or is
/// "." or "..". Used wherever a shard id names a file (outputs, dead letters).
std::string file_name_of(const shard_id& id);

/// Cuts the file `fd` (`size` bytes long; `file` names it in errors) after its last newline and syncs
/// it, so that it ends in a whole line; does nothing when it already does. Returns the new size. The
/// caller must hold the file's writer lock: a fragment is then a dead writer's.
/// @throws shardflow::error (errc::io_failed) when the file cannot be read or cut.
std::uint64_t cut_partial_line(int fd, std::uint64_t size, const std::filesystem::path& file);

/// Options of the file flusher.
struct file_flusher_config {
  /// Where the files go (created if missing).
  std::filesystem::path dir;
  /// Records per batch; the flusher answers `full` beyond it.
  std::size_t batch_records = 1000;
  /// Start a new file once the current one has this many bytes (0: never).
  std::uint64_t roll_bytes = 0;
  /// Start a new file once the current one is this old (0: never).
  std::chrono::seconds roll_age{0};
  /// Sync the file before returning tokens (turn off only for benchmarks of the write path).
  bool sync = true;
  /// When set, `file_flusher::factory` makes pooled flushers writing on this pool's threads.
  std::shared_ptr<io_pool> pool;
  /// Pooled: sealed batches a shard may have waiting or being written.
  std::size_t max_in_flight = pooled_flusher_config{}.max_in_flight;
};

/// The output files of every shard in a directory, listed once: `file_flusher::factory` shares one
/// among its flushers, so that N shards starting together read the directory once, not N times
/// (each listing reads every entry: quadratic in the shards). A listing older than `max_age` is
/// not used; each shard takes its part once (a restarted incarnation lists the directory itself).
/// Thread-safe.
class file_listing {
public:
  explicit file_listing(std::filesystem::path dir,
                        std::chrono::steady_clock::duration max_age = std::chrono::seconds(60));

  /// Returns the indexes of the files of the shard named `name` (`file_name_of`) in the listing,
  /// made at the first call; nothing when this name was taken before or the listing is too old.
  std::optional<std::vector<unsigned>> take(const std::string& name);

  /// Returns how often the directory was read.
  std::size_t listings() const;

private:
  std::filesystem::path dir_;
  std::chrono::steady_clock::duration max_age_;
  mutable std::mutex mu_;
  std::size_t listings_ = 0;
  std::chrono::steady_clock::time_point listed_at_;
  std::map<std::string, std::vector<unsigned>> files_;
  std::set<std::string> taken_;
};

/// The writing half of the file flusher: formats record lines; writes and syncs a batch with one
/// write, rolling files as configured. See the file comment.
class file_sink final : public batch_sink {
public:
  /// Opens and locks the newest file of shard `id` in `cfg.dir` and continues it, or starts the next
  /// one when a live writer holds it. The shard's files come from `listing` when it has them (and
  /// files made since, which follow the newest), else from reading the directory.
  /// @throws shardflow::error (errc::io_failed) when the directory or file cannot be opened.
  file_sink(const shard_id& id, file_flusher_config cfg, file_listing* listing = nullptr);
  ~file_sink() override;

  file_sink(const file_sink&) = delete;
  file_sink& operator=(const file_sink&) = delete;

  void append(std::string& batch, const stream_record& x) override;
  /// @throws shardflow::error (errc::io_failed) when the write or the sync fails (the file is cut
  ///         back to its last whole batch).
  void write(const std::string& batch, std::size_t records) override;
  /// Returns true: batches waiting on the pool are written (and synced) as one.
  bool joins_batches() const noexcept override;

  /// Returns the file being written.
  const std::filesystem::path& current_file() const noexcept {
    return path_;
  }

private:
  std::filesystem::path path_of(unsigned index) const;
  std::vector<unsigned> own_files() const;
  int try_lock(unsigned index, bool create);
  void repair(unsigned index);
  void open_first(unsigned newest);
  void roll();
  void adopt(int fd, unsigned index, bool created);

  shard_id id_;
  std::string name_; // file_name_of(id_)
  file_flusher_config cfg_;
  std::filesystem::path path_;
  unsigned index_ = 1;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::chrono::system_clock::time_point opened_;
};

/// Appends a shard's records to rolling files on the caller's thread; see the file comment.
class file_flusher final : public flusher {
public:
  /// Opens the shard's file as `file_sink` does.
  /// @throws shardflow::error (errc::io_failed) when the directory or file cannot be opened.
  file_flusher(const shard_id& id, file_flusher_config cfg, file_listing* listing = nullptr);
  ~file_flusher() override;

  add_result add(const stream_record& x, flush_token token) override;
  std::vector<flush_token> flush(flush_mode mode) override;
  std::vector<flush_token> heartbeat() override;

  /// Returns the file being written.
  const std::filesystem::path& current_file() const noexcept {
    return sink_.current_file();
  }

  /// Returns a factory making a file flusher per shard, or a pooled flusher around a `file_sink`
  /// when `cfg.pool` is set.
  static flusher_factory factory(file_flusher_config cfg);

private:
  std::size_t batch_records_;
  file_sink sink_;
  std::string buffer_;
  std::vector<flush_token> tokens_;
};

/// Writes records to standard output as record lines; a flush writes the batch in one go.
class stdout_flusher final : public flusher {
public:
  explicit stdout_flusher(std::size_t batch_records = 1000);

  add_result add(const stream_record& x, flush_token token) override;
  std::vector<flush_token> flush(flush_mode mode) override;
  std::vector<flush_token> heartbeat() override;

  /// Returns a factory making a stdout flusher per shard (writes of shards never interleave).
  static flusher_factory factory(std::size_t batch_records);

private:
  std::size_t capacity_;
  std::string buffer_;
  std::vector<flush_token> tokens_;
};

} // namespace shardflow
