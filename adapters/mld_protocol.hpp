// adapters/mld_protocol.hpp - the lines of the KCL MultiLangDaemon protocol, read and written.
//
// The daemon sends one compact JSON object per line (`initialize`, `processRecords`, `shutdown`,
// `shutdownRequested`, `leaseLost`, `shardEnded`, and `checkpoint` replies); the worker answers with
// `status` and `checkpoint` requests carrying exactly the keys the daemon knows (a line with an
// unknown key is silently skipped by the daemon, which deadlocks the exchange). See
// ../shared/reference/mld-protocol.md for every KCL generation; the field set of checkpoint
// requests (v1 `checkpoint`, v2 `sequenceNumber` + `subSequenceNumber`) is chosen from `initialize`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardflow::mld {

/// One record of a `processRecords` message, as the daemon sent it. The text fields view the parser's
/// buffer: they are valid until the parser parses the next line.
struct wire_record {
  std::string_view data_base64;
  bool data_null = false;
  std::string_view partition_key;
  std::string_view sequence_number;
  std::optional<std::uint64_t> sub_sequence_number;
  std::optional<std::int64_t> arrival_ms;
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
  // checkpoint reply
  std::optional<std::string> error;
};

/// Decodes daemon lines; keeps its buffers between lines (one per session, not thread-safe).
class message_parser {
public:
  message_parser();
  ~message_parser();

  /// Parses one line (no newline). Returns an empty string on success, else why it is not a
  /// message (the caller logs and ignores such lines). With `padded`, 64 readable bytes follow the
  /// line and it is parsed in place.
  std::string parse(std::string_view line, message& out, bool padded = false);

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
