// core/sequence_number.hpp - where a record sits in its shard: Kinesis-sized sequence numbers.
//
// A Kinesis sequence number is a decimal string of up to 129 digits (56 in practice), too large for any
// machine integer; DynamoDB Streams numbers have 21 to 40 digits and may carry leading zeros; a Kafka
// offset or a local stream's line number fits 64 bits. `sequence_base` holds any of them in a fixed
// 68-byte value with no heap allocation, so copying one costs a few nanoseconds. It keeps the exact
// text (leading zeros included, because that is what a daemon must be handed back) and orders
// numerically:
//
//     packed_: 65 bytes, two digits per byte, right-aligned and zero-padded on the left
//
//       "000123" -> 00 00 ... 00 01 23     len_ = 6   (to_string gives "000123" back)
//       "123"    -> 00 00 ... 00 01 23     len_ = 3   (numerically equal to "000123")
//
// so numeric comparison is one memcmp. A daemon may also hand over a sentinel instead of a number
// (TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END); it is a `sequence_base` too.
//
// `sequence_number` adds what the worker side knows: the daemon's sub-sequence number and, for a user
// record unpacked from a KPL aggregate, its index and the aggregate's record count.
//
// All types here are plain values: no threads, no locks, safe to copy between actors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardflow {

/// The base part of a sequence number: a non-negative decimal number of up to 129 digits, or a
/// sentinel.
class sequence_base {
public:
  /// The most digits a sequence number may have (Kinesis allows `0|[1-9][0-9]{0,128}`).
  static constexpr std::size_t max_digits = 129;

  /// What a `sequence_base` holds: a number, or one of the sentinels a daemon may send instead.
  enum class kind : std::uint8_t {
    /// A decimal number.
    number,
    /// `TRIM_HORIZON`: the oldest record still in the stream.
    trim_horizon,
    /// `LATEST`: just after the newest record.
    latest,
    /// `AT_TIMESTAMP`: a position chosen by time.
    at_timestamp,
    /// `SHARD_END`: the shard is closed and fully read.
    shard_end,
  };

  /// Creates the number 0.
  sequence_base() noexcept;

  /// Creates the number `value` (a Kafka offset, a line number).
  explicit sequence_base(std::uint64_t value) noexcept;

  /// Creates the sentinel `k`; `kind::number` gives the number 0.
  static sequence_base sentinel(kind k) noexcept;

  /// Parses `text`: 1 to 129 decimal digits, or a sentinel name in upper case.
  /// @throws shardflow::error with errc::bad_sequence_number, naming the offending text and why.
  static sequence_base parse(std::string_view text);

  /// Returns what this value holds.
  kind what() const noexcept {
    return kind_;
  }

  /// Returns whether this value is a number (not a sentinel).
  bool is_number() const noexcept {
    return kind_ == kind::number;
  }

  /// Returns the number of digits of the text, leading zeros included (0 for a sentinel).
  std::size_t digits() const noexcept {
    return is_number() ? len_ : 0;
  }

  /// Returns the exact text this value was parsed from, or the sentinel's name.
  std::string to_string() const;

  /// Returns the value if it is a number below 2^64, e.g. for a Kafka offset.
  std::optional<std::uint64_t> to_uint64() const noexcept;

  /// Three-way comparison: numbers compare numerically (leading zeros do not matter); sentinels are
  /// placed by meaning: TRIM_HORIZON < AT_TIMESTAMP < every number < LATEST < SHARD_END.
  friend int compare(const sequence_base& x, const sequence_base& y) noexcept;

private:
  static constexpr std::size_t packed_size = (max_digits + 1) / 2;

  void set_digit(std::size_t pos_from_right, unsigned digit) noexcept;
  unsigned digit(std::size_t pos_from_right) const noexcept;

  kind kind_ = kind::number;
  std::uint8_t len_ = 1;
  std::array<std::uint8_t, packed_size> packed_{};
};

/// Returns the name of `k` as a daemon spells it, e.g. "TRIM_HORIZON" ("number" for a number).
const char* to_string(sequence_base::kind k) noexcept;

/// Returns `x.to_string()`.
inline std::string to_string(const sequence_base& x) {
  return x.to_string();
}

/// The full position of a record: base, the daemon's sub-sequence number, and the record's place
/// inside a KPL aggregate that the worker unpacked itself.
struct sequence_number {
  /// The sequence number the stream assigned (or a sentinel).
  sequence_base base;

  /// The sub-sequence number the daemon sent (KCL >= 1.7.2); absent for older daemons.
  std::optional<std::uint64_t> sub;

  /// Index of this user record inside its aggregate (0-based); meaningful when `user_total > 0`.
  std::uint32_t user_sub = 0;

  /// Number of user records in the aggregate this record came from; 0 when it is a plain record.
  std::uint32_t user_total = 0;

  /// Returns whether this is a user record that is not the last of its aggregate. The daemon can
  /// only checkpoint whole aggregates, so such a record is not a checkpoint position unless
  /// sub-sequence checkpoints are enabled (erlmld's `is_sub_record`).
  bool is_sub_record() const noexcept {
    return user_total > 0 && user_sub + 1 < user_total;
  }
};

/// Three-way comparison by base, then sub-sequence number (absent counts as 0), then `user_sub`.
int compare(const sequence_number& x, const sequence_number& y) noexcept;

/// Renders `x` for logs: "base", "base/sub", or "base/sub#user_sub:user_total".
std::string to_string(const sequence_number& x);

#define SHARDFLOW_COMPARISON_OPERATORS(type)                                                       \
  inline bool operator==(const type& x, const type& y) noexcept {                                  \
    return compare(x, y) == 0;                                                                     \
  }                                                                                                \
  inline bool operator!=(const type& x, const type& y) noexcept {                                  \
    return compare(x, y) != 0;                                                                     \
  }                                                                                                \
  inline bool operator<(const type& x, const type& y) noexcept {                                   \
    return compare(x, y) < 0;                                                                      \
  }                                                                                                \
  inline bool operator<=(const type& x, const type& y) noexcept {                                  \
    return compare(x, y) <= 0;                                                                     \
  }                                                                                                \
  inline bool operator>(const type& x, const type& y) noexcept {                                   \
    return compare(x, y) > 0;                                                                      \
  }                                                                                                \
  inline bool operator>=(const type& x, const type& y) noexcept {                                  \
    return compare(x, y) >= 0;                                                                     \
  }

SHARDFLOW_COMPARISON_OPERATORS(sequence_base)
SHARDFLOW_COMPARISON_OPERATORS(sequence_number)

#undef SHARDFLOW_COMPARISON_OPERATORS

} // namespace shardflow
