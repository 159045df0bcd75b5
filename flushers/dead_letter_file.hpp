// flushers/dead_letter_file.hpp - the file where one shard's dead letters (input set aside: lines
// that are not records, records without a usable position) are appended, crash-safe.
//
// The file is `<dir>/<file_name_of(shard)>.ndjson`, one dead letter per line. It is opened at the
// first write: the directory is created if missing, a new file's directory entry is synced, and the
// file is locked (`flock`, held for the object's life, so two live writers of one shard never
// interleave: the second takes `<name>.2.ndjson`, and so on) and a partial last line a writer that
// died left is cut off. A write that fails cuts its own partial line again. Lines count as set aside
// (so that a checkpoint may pass them) only once `sync` returned.
//
// Used by one thread (the shard's source, or one MLD session). Failures throw shardflow::error
// (errc::io_failed) naming the file.
#pragma once

#include <filesystem>
#include <string_view>

#include <shardflow/core/record.hpp>

namespace shardflow {

/// The dead letters of one shard; see the file comment.
class dead_letter_file {
public:
  /// Names the file of `shard` in `dir`; nothing is opened before the first write.
  dead_letter_file(std::filesystem::path dir, const shard_id& shard);
  ~dead_letter_file();

  dead_letter_file(const dead_letter_file&) = delete;
  dead_letter_file& operator=(const dead_letter_file&) = delete;

  /// Appends `bytes` (a line may come in several pieces; its newline is the caller's).
  void write(std::string_view bytes);

  /// Syncs what was written: from now on it survives a crash.
  void sync();

  /// Returns the file written to (empty before the first write).
  const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  void open();

  std::filesystem::path dir_;
  std::string name_;
  std::filesystem::path path_;
  int fd_ = -1;
};

} // namespace shardflow
