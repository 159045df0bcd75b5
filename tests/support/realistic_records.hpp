// tests/support/realistic_records.hpp - the records every benchmark feeds: realistic sizes, built
// once.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <shardflow/core/record.hpp>

namespace shardflow::testing {

/// Returns `records` records in batches of `batch_size`: 100-byte data, partition keys over 4,096
/// values, and 56-digit sequence numbers (a 46-digit prefix of a real Kinesis sequence number plus a
/// 10-digit counter), increasing.
inline std::vector<record_batch> make_batches(std::size_t records, std::size_t batch_size) {
  const std::string prefix = "4959033827149025660855969253836157109592157598";
  std::vector<record_batch> result;
  result.reserve(records / batch_size + 1);
  std::vector<stream_record> current;
  char digits[24];
  for (std::size_t i = 0; i < records; ++i) {
    stream_record x;
    x.partition_key = "pk-" + std::to_string(i % 4096);
    x.data.assign(100, static_cast<char>('a' + i % 26));
    std::snprintf(digits, sizeof digits, "%010zu", i);
    x.sequence.base = sequence_base::parse(prefix + digits);
    x.arrival_ms = 1'700'000'000'000 + static_cast<std::int64_t>(i);
    current.push_back(std::move(x));
    if (current.size() == batch_size)
      result.emplace_back(std::exchange(current, {}));
  }
  if (!current.empty())
    result.emplace_back(std::move(current));
  return result;
}

} // namespace shardflow::testing
