// local/local_stream.hpp - the embedded local stream: a directory of append-only shard files.
//
// Layout (format version 1):
//
//     <dir>/shardflow-stream        "shardflow local stream 1\nshards <N>\n"
//     <dir>/shard-00000.ndjson      the records of shard 0, one per line
//     <dir>/shard-00001.ndjson      ...
//
// A record line is a JSON object with the partition key, the data (UTF-8 text as "d", anything else
// in base64 as "b") and, optionally, the approximate arrival time in milliseconds since the Unix
// epoch (flushers/record_line.hpp):
//
//     {"k":"user-17","t":1700000000000,"d":"{\"user\":17,\"action\":\"buy\"}"}
//
// A record's sequence number is the byte offset just after its line in the shard file (its newline
// included): where the next line starts. A shard's checkpoint is thus the number of bytes it has
// done: a replay seeks straight there, and the lag, file size - checkpoint, is 0 once everything is
// durable. A checkpoint written by shardflow before issue 12 (the start offset of the last durable
// record) is at the start of a line too: resuming there replays that one record (at-least-once,
// never a loss). Records are routed to shards as Kinesis routes them:
// the MD5 of the partition key, read as a 128-bit number, falls into one of N equal ranges of the
// hash-key space (the first 64 bits decide; ranges meet at multiples of 2^128 / N).
//
// Writers append whole lines, one writer at a time (each write holds `flock(LOCK_EX)` on the shard
// file); a writer that finds the file ending in a fragment (the partial line of a writer that died)
// cuts it before it appends, and a writer whose own write fails cuts its own partial last line (the
// whole lines that got out stay: a following reader may have taken them already). Readers take
// no lock: they take a line only once its newline is there, so cutting a fragment never takes
// anything from them, and `put` may append while `run --follow` reads. Without --follow, a file that
// ends inside a line stops its shard before that line (reported as bad input): a rerun takes it once
// it is whole. A file that becomes shorter than what a reader has already taken (truncated or
// replaced) stops that reader's shard without a new checkpoint (reported as bad input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardflow/core/record.hpp>
#include <shardflow/core/record_source.hpp>

namespace shardflow::local {

/// Returns the shard (0 .. shards-1) whose hash-key range holds the MD5 of `partition_key`.
std::size_t route(std::string_view partition_key, std::size_t shards);

/// Returns the name of shard `i` ("shard-00007").
std::string shard_name(std::size_t i);

/// An opened (or created) local stream directory.
class stream_dir {
public:
  /// Opens the stream at `dir`.
  /// @throws shardflow::error (errc::bad_input) when `dir` is not a local stream; errc::io_failed
  ///   when its meta file cannot be read (an unreadable directory, for instance).
  static stream_dir open(const std::filesystem::path& dir);

  /// Creates a stream of `shards` shards at `dir`, or opens it when it exists with that many.
  /// @throws shardflow::error when it exists with another shard count or cannot be created.
  static stream_dir create(const std::filesystem::path& dir, std::size_t shards);

  /// Returns whether `dir` holds a local stream.
  static bool exists(const std::filesystem::path& dir);

  /// Returns the directory.
  const std::filesystem::path& dir() const noexcept {
    return dir_;
  }

  /// Returns the number of shards.
  std::size_t shards() const noexcept {
    return shards_;
  }

  /// Returns the file of shard `i`.
  std::filesystem::path shard_file(std::size_t i) const;

private:
  std::filesystem::path dir_;
  std::size_t shards_ = 0;
};

/// Appends records to the shard files of a stream, each to the shard its partition key routes to.
/// Buffers per shard; `flush` writes everything (whole lines only) and syncs. Each write locks its
/// file, cuts a dead writer's fragment first and its own partial last line on failure (see the
/// file comment). Write failures throw shardflow::error (errc::io_failed).
class stream_writer {
public:
  explicit stream_writer(const stream_dir& stream);
  ~stream_writer();

  stream_writer(const stream_writer&) = delete;
  stream_writer& operator=(const stream_writer&) = delete;

  /// Routes `x` by its partition key and buffers its line; writes when a buffer passes 1 MiB.
  void append(const stream_record& x);

  /// Writes every buffered line and fsyncs the files.
  void flush();

  /// Returns how many records went to each shard.
  const std::vector<std::uint64_t>& counts() const noexcept {
    return counts_;
  }

private:
  void write_out(std::size_t shard);

  std::vector<int> fds_;
  std::vector<std::string> buffers_;
  std::vector<std::uint64_t> counts_;
  std::vector<std::filesystem::path> files_;
};

/// Problems met in the input, collected for the command's exit code and summary. Thread-safe: the
/// sources of many shards report here, the host reads.
class input_problems {
public:
  /// Records `message`: a problem the source dealt with (a line sent to the dead-letter file).
  void report(std::string message);

  /// Records `message`: a problem that stopped `shard` (the run's input was bad); once, however
  /// often a restarted shard stops there again. `where` is the short form `stop_of` returns,
  /// "FILE:LINE (reason)"; the message itself when empty.
  void report_stop(const shard_id& shard, std::string message, std::string where = {});

  /// Returns where `shard` stopped, "FILE:LINE (reason)" (for instance
  /// "s/shard-00001.ndjson:17 (not a JSON object)"; "FILE (reason)" when no line is to blame), the
  /// last stop reported for it; nothing when it did not stop.
  std::optional<std::string> stop_of(const shard_id& shard) const;

  /// Returns everything reported so far.
  std::vector<std::string> all() const;

  /// Returns the problems that stopped a shard.
  std::vector<std::string> stops() const;

  /// Counts of records routed to the dead-letter file.
  void count_dead_letter() noexcept;
  std::uint64_t dead_letters() const;

private:
  mutable std::mutex mtx_;
  std::vector<std::string> messages_;
  std::vector<std::string> stops_;
  std::map<shard_id, std::string> stop_of_; // the last stop of each shard
  std::uint64_t dead_letters_ = 0;
};

/// What a source does with a line that is not a record.
enum class bad_input_policy : std::uint8_t {
  /// Stop the shard before the line: everything before it is processed and checkpointed; the run
  /// ends with an error naming the file and line, and a rerun after the fix resumes there.
  stop,
  /// Append the line to the dead-letter file of the shard (synced), and go on.
  dead_letter,
};

/// Options of a shard file source.
struct file_source_config {
  /// Keep reading as the file grows instead of ending at its end.
  bool follow = false;
  bad_input_policy on_bad_input = bad_input_policy::stop;
  /// The longest record line (bytes, without its newline); a longer one is bad input (under
  /// dead_letter it is copied to the dead-letter file piece by piece, never held whole).
  std::size_t max_line_bytes = std::size_t{16} << 20;
  /// Where dead letters go: `<dead_letter_dir>/<file_name_of(shard)>.ndjson` gets each bad line
  /// byte for byte as it was in the shard file (so a fixed copy can be appended to that shard file
  /// again), and `<file_name_of(shard)>.context.ndjson` one JSON object a line, in the same order,
  /// saying where it came from and why:
  ///     {"file":"s/shard-00000.ndjson","offset":812,"line":7,"reason":"not a JSON object",
  ///      "bytes":41,"copy":"shard-00000.ndjson","at":0}
  /// (`offset` and `line` in the shard file, `bytes` the length of the line without its newline,
  /// `at` where its copy starts in the file `copy`). The copy is synced before its context line:
  /// after a crash a copy may lack its context (and comes again, the checkpoint did not pass it),
  /// never the reverse.
  std::filesystem::path dead_letter_dir;
  /// Where problems are reported.
  std::shared_ptr<input_problems> problems;
};

/// Reads the records of one shard file; replays from a checkpoint by seeking to its byte offset (the
/// end of the checkpointed record's line; see the file comment).
/// Its buffer stays below twice `max_line_bytes` plus two read chunks (of 1 MiB), and each byte is
/// scanned for the end of its line once.
/// A file found shorter than what was already read throws shardflow::error (errc::bad_input, also
/// reported to `problems`), so the shard stops without checkpointing past the new end; a checkpoint
/// beyond the end of the file, or one not at the start of a line, stops the shard at that checkpoint
/// (reported to `problems`; thrown when there is no `problems`).
class file_source final : public record_source {
public:
  /// Opens `file`, the file of `shard`.
  /// @throws shardflow::error (errc::bad_input) when there is no such file, naming it and the
  ///   shard count of its stream ("s/shard-00002.ndjson: no such file; the stream's
  ///   shardflow-stream says 4 shards"); errc::io_failed when it cannot be opened.
  file_source(std::filesystem::path file, shard_id shard, file_source_config cfg);
  ~file_source() override;

  void rewind(const std::optional<sequence_number>& after) override;
  record_batch read(std::size_t max) override;
  bool at_end() const override;

  /// Returns whether the shard stopped before the end of its file: at a bad line (stop policy), at
  /// a line the file ends inside (finite input), or at a checkpoint beyond the end of the file. The
  /// shard then must not checkpoint its end: a rerun resumes before the line that stopped it.
  bool stopped() const override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Returns the 1-based line number of the byte at `offset` in `file` (for error messages). For a
/// checkpoint (the end of a record's line) it is the number of the line after that record.
std::uint64_t line_number_at(const std::filesystem::path& file, std::uint64_t offset);

} // namespace shardflow::local
