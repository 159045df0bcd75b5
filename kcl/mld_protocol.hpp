// kcl/mld_protocol.hpp - the lines of the KCL MultiLangDaemon protocol, read and written.
//
// The daemon sends one compact JSON object per line (`initialize`, `processRecords`, `shutdown`,
// `shutdownRequested`, `leaseLost`, `shardEnded`, and `checkpoint` replies); the worker answers with
// `status` and `checkpoint` requests carrying exactly the keys the daemon knows (a line with an
// unknown key is silently skipped by the daemon, which deadlocks the exchange). The
// messages are those of the KCL's `software.amazon.kinesis.multilang` package (1.x: `com.amazonaws.
// services.kinesis.multilang`) for every KCL generation; the field set of checkpoint
// requests (v1 `checkpoint`, v2 `sequenceNumber` + `subSequenceNumber`) is chosen from `initialize`.
//
// What the parser makes of what the daemon should never send (the daemon writes Java longs and
// valid JSON, so each of these is corruption or a foreign peer):
//
//   a line that is not JSON           the reason (invalid UTF-8 at offset N, text after the object,
//                                     nesting deeper than 1024, ...) and the top-level `action` the
//                                     raw text names, if any: the caller must not ignore such a line
//   a number beyond 64 bits           the line is read again with numbers as text: an optional field
//                                     (`millisBehindLatest`, `approximateArrivalTimestamp`) becomes
//                                     absent, a record's `subSequenceNumber` makes its position unusable
//                                     (lenient on purpose: that second reading also takes malformed
//                                     numbers such as `01` or `-` outside strings; the daemon's own
//                                     lines never have them)
//   an arrival time out of range      no arrival time (checked arithmetic on the KCL 2.0.x Instant)
//   a record that is not an object,   the record's `problem` says why its position is unusable, and
//   or without a sequenceNumber       `raw` holds its JSON text
//   processRecords without records    an error naming the action
//   `"error":""` in a reply           no error, like null; a non-string error is its JSON text
//   no `action`, or one that is not   "no action" / "an action that is not a string (a number)",
//   a string                          with `out.action` empty: nothing to answer, the caller may log
//                                     and ignore the line
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardflow/core/result.hpp>

namespace shardflow::mld {

/// One record of a `processRecords` message, as the daemon sent it. The text fields view the parser's
/// buffer or the line (see `message_parser::parse`): they are valid until the parser parses the next
/// line.
struct wire_record {
  std::string_view data_base64;
  bool data_null = false;
  std::string_view partition_key;
  std::string_view sequence_number;
  std::optional<std::uint64_t> sub_sequence_number;
  std::optional<std::int64_t> arrival_ms;
  /// Why the record's position (sequence and sub-sequence number) is unusable; empty when it is
  /// usable as far as the parser can tell (the caller still parses the sequence number).
  std::string_view problem;
  /// The record's JSON text, kept only when `problem` is set (for a dead-letter file).
  std::string raw;
};

/// A decoded daemon message.
struct message {
  enum class kind : std::uint8_t {
    initialize,
    process_records,
    shutdown,
    shutdown_requested,
    lease_lost,
    shard_ended,
    checkpoint,
    other, // any other action, answered with a status (forward compatible)
  };
  kind what = kind::other;
  std::string action;
  // initialize
  std::string shard_id;
  bool has_sequence_key = false; // the v2 field set (KCL >= 1.7.2)
  std::optional<std::string> sequence_number;
  std::optional<std::uint64_t> sub_sequence_number;
  // processRecords
  std::vector<wire_record> records;
  std::optional<std::int64_t> millis_behind_latest;
  // shutdown
  std::string reason;
  // checkpoint reply: the error (none when null or ""; the JSON text of a non-string), and the
  // position it echoes: v2 `sequence_number` above and `echo_sub`, v1 `echo_checkpoint` (the JSON
  // text of a value that is not a string)
  std::optional<std::string> error;
  std::optional<std::string> echo_sub;
  std::optional<std::string> echo_checkpoint;
};

/// Options of `message_parser`.
struct message_parser_config {
  /// Reads a processRecords line with the fast path when the CPU can run it (AVX2 and BMI1;
  /// mld_records_avx2.hpp), the DOM reading otherwise and for every line the fast path cannot vouch
  /// for. Off: the DOM reading only (the reference the tests compare the fast path with).
  bool fast_path = true;
};

/// Decodes daemon lines; keeps its buffers between lines (one per session, not thread-safe).
///
/// Two readings, one outcome: a line that starts with `{"action":"processRecords"` (how the daemon
/// writes it) goes to the fast path first, which either vouches for its reading or declines, and a
/// declined line (another action, an escape, a problem record, a number that is not a plain int64,
/// anything unexpected) is read by the DOM, whose behaviour the list above describes.
class message_parser {
public:
  explicit message_parser(message_parser_config cfg = {});
  ~message_parser();

  message_parser(const message_parser&) = delete;
  message_parser& operator=(const message_parser&) = delete;

  /// Returns whether this CPU can run the fast path (and this build has it).
  static bool fast_path_available() noexcept;

  /// Returns how many lines the fast path read (the others went through the DOM).
  std::uint64_t fast_lines() const noexcept;

  /// Parses one line (no newline). Returns success, or why it is not a message (`error()`); then `out.action` (and `out.what`) hold the action the line names at its top level if
  /// one can be recognised in the raw text (the caller must then fail rather than ignore the line),
  /// and `out.action` is empty otherwise (a line the caller may log and ignore). With `padded`, 64
  /// readable bytes follow the line and it is parsed in place: the records' texts may then view the
  /// line itself, so it must stay as it is until the next parse.
  status parse(std::string_view line, message& out, bool padded = false);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Returns the status line answering `action`.
std::string status_line(const std::string& action);

/// Returns a checkpoint request: v2 fields (`sequenceNumber`, `subSequenceNumber`) or the v1
/// `checkpoint` field; an empty `sequence` asks for the largest permitted position (shard end).
std::string checkpoint_line(bool v2, const std::optional<std::string>& sequence,
                            std::optional<std::uint64_t> sub);

} // namespace shardflow::mld
