// kcl/kpl.hpp - KPL record aggregation: unpacking aggregates a worker receives, and packing
// them on the producer side.
//
// Layout: MAGIC (4 bytes) | protobuf AggregatedRecord | MD5 of the protobuf (16 bytes). The standard
// magic is F3 89 9A C2 (the KCL itself unpacks those). erlmld adds two of its own: 00 89 9A C2, the
// same layout that the KCL leaves alone, and 01 89 9A C2, where zlib(protobuf | MD5) follows the
// magic. A record is an aggregate only if the magic matches, the MD5 checks out and the protobuf
// parses with every key index in range; a record that carries a magic but fails a check is
// `corrupt` and should be delivered as one opaque record (and logged), never dropped. So is an
// aggregate that would cost more than its `unpack_limits` allow: inflating stops as soon as a cap is
// passed, and reading stops at the first user record past one.
//
// Plain functions and a value class; no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardflow::kpl {

/// Which magic an aggregate carries.
enum class magic : std::uint8_t {
  /// F3 89 9A C2: the KPL's own.
  standard,
  /// 00 89 9A C2: erlmld's, same layout, unseen by the KCL.
  erlmld_plain,
  /// 01 89 9A C2: erlmld's, zlib-compressed protobuf and MD5.
  erlmld_deflated,
};

/// One user record inside an aggregate.
struct user_record {
  std::string partition_key;
  std::optional<std::string> explicit_hash_key;
  std::string data;
};

/// One user record of an unpacked aggregate, as views into the bytes given to `unpack` (or into
/// `unpack_result::inflated` for a deflated aggregate): valid while those bytes are.
struct user_record_view {
  std::string_view partition_key;
  std::optional<std::string_view> explicit_hash_key;
  std::string_view data;
};

/// Bounds on what unpacking may cost; an aggregate that would pass one is `corrupt`.
///
/// Without them one record is a weapon: a 1 MiB zlib stream can inflate to about 1 GiB (deflate
/// reaches 1032:1), and the audit's 58 KB one to five million empty user records (the smallest
/// takes 6 bytes on the wire), hundreds of bytes each in a worker. The defaults:
/// - erlmld's producer (`kpl_agg.erl`) bounds an aggregate by its size *before* compression at the
///   Kinesis record limit, 1 MiB; streams for large records take 10 MiB. No aggregate packed to
///   the limit of any stream inflates past 10 MiB.
/// - the KPL's default aggregate (AggregationMaxSize 51,200 bytes) holds at most about 8,500 user
///   records, one of 1 MiB about 175,000 empty ones; 200,000 leaves room for both.
/// - one `unpack_all` call gets one processRecords line, at most what one GetRecords returned
///   (10 MB, 10,000 records). Its shared caps, 128 MiB inflated (a whole GetRecords of erlmld
///   aggregates compressed 12:1) and 2,000,000 user records (10 MB of the smallest is 1.75
///   million), keep a line of many bombs each under the caps from adding up.
struct unpack_limits {
  /// Inflated bytes (protobuf and MD5) of one deflated aggregate.
  std::size_t max_inflated_bytes = std::size_t{10} << 20;
  /// User records of one aggregate.
  std::size_t max_user_records = 200'000;
  /// Inflated bytes of all the deflated aggregates of one `unpack_all` call together.
  std::size_t max_inflated_bytes_per_call = std::size_t{128} << 20;
  /// User records of all the aggregates of one `unpack_all` call together.
  std::size_t max_user_records_per_call = 2'000'000;
};

/// What `unpack` found.
struct unpack_result {
  enum class kind : std::uint8_t {
    /// Not an aggregate (or a magic we were told to ignore): one plain record.
    plain,
    /// An aggregate; `records` holds its user records in order.
    aggregate,
    /// It looked like an aggregate but failed a check (`why` says which): one opaque record.
    corrupt,
  };
  kind what = kind::plain;
  std::vector<user_record_view> records;
  std::string why;
  /// The inflated bytes of a deflated aggregate (the views of `records` point here).
  std::vector<char> inflated;
};

/// Returns whether `data` starts with an aggregate magic `unpack` would look into (a cheap test).
bool may_be_aggregate(std::string_view data, bool erlmld_magics = true) noexcept;

/// Unpacks `data` if it is an aggregate with the standard magic, or with one of erlmld's when
/// `erlmld_magics` is set. Reads the protobuf wire format in place: no message objects, no copies;
/// the result's views point into `data`.
unpack_result unpack(std::string_view data, bool erlmld_magics = true,
                     const unpack_limits& limits = {});

/// Does what `unpack` does for each of `data[0..n)`, into `out[0..n)` (resized to n; what it
/// holds is reused), and checks the MD5s of all the aggregates among them side by side
/// (md5::many): several times faster than one by one for a batch of small aggregates. The
/// `_per_call` limits are spent in order: once they are, every further aggregate is `corrupt`.
void unpack_all(const std::string_view* data, std::size_t n, bool erlmld_magics,
                std::vector<unpack_result>& out, const unpack_limits& limits = {});

/// Builds aggregates of user records (the producer side).
class aggregator {
public:
  /// Adds a user record; keys are shared through the aggregate's key tables.
  void add(const std::string& partition_key, std::string data,
           const std::optional<std::string>& explicit_hash_key = std::nullopt);

  /// Returns how many records were added since the last `build`.
  std::size_t size() const noexcept {
    return records_.size();
  }

  /// Returns the aggregate of the records added so far (magic, protobuf, MD5; deflated for
  /// `erlmld_deflated`) and starts a new one.
  std::string build(magic m = magic::standard);

private:
  std::vector<std::string> keys_;
  std::vector<std::string> hash_keys_;
  std::vector<user_record> records_;
};

} // namespace shardflow::kpl
