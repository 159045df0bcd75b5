// flushers/file_flusher.hpp - writes each shard's records to files of its own, synced before the
// tokens come back.
//
// Records are appended to `<dir>/<shard>-<nnnnnn>.ndjson` as record lines (flushers/record_line.hpp,
// the local stream's format). A flush writes the whole batch with one write and `fdatasync`s the
// file; only then are the batch's tokens returned, so a checkpoint never passes a record that is not
// on disk. A new file is started once the current one passes `roll_bytes` or is older than
// `roll_age` (checked at each flush); a new file's directory entry is synced before its first records
// count as durable. A new incarnation of the shard continues the newest file, first cutting off a
// partial last line a crash may have left, so a restart appends the replayed records there
// (at-least-once: duplicates are possible after the last checkpoint, losses are not).
//
// The flusher blocks on the disk for the sync: run its shard detached (actors/shard.hpp) or accept
// that one CAF worker waits per flush.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "flushers/flusher.hpp"

namespace shardflow {

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
};

/// Appends a shard's records to rolling files; see the file comment.
class file_flusher final : public flusher {
public:
  /// Opens (or continues) the newest file of shard `id` in `cfg.dir`.
  /// @throws shardflow::error (errc::io_failed) when the directory or file cannot be opened.
  file_flusher(const shard_id& id, file_flusher_config cfg);
  ~file_flusher() override;

  add_result add(const stream_record& x, flush_token token) override;
  std::vector<flush_token> flush(flush_mode mode) override;
  std::vector<flush_token> heartbeat() override;

  /// Returns the file being written.
  const std::filesystem::path& current_file() const noexcept {
    return path_;
  }

  /// Returns a factory making a file flusher per shard.
  static flusher_factory factory(file_flusher_config cfg);

private:
  void open_file(unsigned index);
  void drop_torn_line();

  shard_id id_;
  file_flusher_config cfg_;
  std::string buffer_;
  std::vector<flush_token> tokens_;
  std::filesystem::path path_;
  unsigned index_ = 1;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::chrono::system_clock::time_point opened_;
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
