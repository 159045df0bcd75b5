// fuzz/mld_parser.cpp - mld::message_parser on arbitrary lines, copied and in place.
//
// Checks: parsing a line in place (`padded`, 64 bytes of '"' and '}' after it, which a parser that
// read past the line would trip on) and from a copy give the same outcome and the same message;
// a parser reused after another line gives it again (no state leaks between lines); a message's
// record views lie inside the line or the parser's buffer, valid until the next parse; and the
// processRecords fast path (mld_records_avx2.hpp) reads the line as the DOM reading alone does (a
// parser with `fast_path` off), or declines it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include <shardflow/kcl/mld_protocol.hpp>

namespace {

using shardflow::mld::message;
using shardflow::mld::wire_record;

bool same(const wire_record& x, const wire_record& y) {
  return x.data_base64 == y.data_base64 && x.data_null == y.data_null
         && x.partition_key == y.partition_key && x.sequence_number == y.sequence_number
         && x.sub_sequence_number == y.sub_sequence_number && x.arrival_ms == y.arrival_ms
         && x.problem == y.problem && x.raw == y.raw;
}

bool same(const message& x, const message& y) {
  if (x.records.size() != y.records.size())
    return false;
  for (std::size_t i = 0; i < x.records.size(); ++i)
    if (!same(x.records[i], y.records[i]))
      return false;
  return x.what == y.what && x.action == y.action && x.shard_id == y.shard_id
         && x.has_sequence_key == y.has_sequence_key && x.sequence_number == y.sequence_number
         && x.sub_sequence_number == y.sub_sequence_number
         && x.millis_behind_latest == y.millis_behind_latest && x.reason == y.reason
         && x.error == y.error;
}

// A snapshot that owns its text, so it can be compared after the parser moves on.
struct owned {
  std::string why;
  message m;
  std::string texts;
};

owned snapshot(const std::string& why, const message& m) {
  owned o{why, m, {}};
  for (const auto& r : m.records)
    o.texts += std::string{r.data_base64} + '\0' + std::string{r.partition_key} + '\0'
               + std::string{r.sequence_number} + '\0';
  o.m.records.clear();
  return o;
}

bool same(const owned& x, const std::string& why, const message& m) {
  const auto y = snapshot(why, m);
  return x.why == y.why && x.texts == y.texts && same(x.m, y.m);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line{reinterpret_cast<const char*>(data), size};
  thread_local shardflow::mld::message_parser copying;
  thread_local shardflow::mld::message_parser in_place;
  thread_local shardflow::mld::message_parser dom{shardflow::mld::message_parser_config{false}};
  message a;
  const auto why_a = copying.parse(line, a).error();
  std::string padded = line + std::string(32, '"') + std::string(32, '}');
  message b;
  const auto why_b = in_place.parse(std::string_view{padded.data(), line.size()}, b, true).error();
  SHARDFLOW_FUZZ_CHECK(why_a == why_b);
  if (why_a.empty())
    SHARDFLOW_FUZZ_CHECK(same(a, b));
  message d;
  const auto why_d = dom.parse(line, d).error();
  SHARDFLOW_FUZZ_CHECK(why_d == why_a);
  if (why_a.empty())
    SHARDFLOW_FUZZ_CHECK(same(a, d));
  const auto first = snapshot(why_a, a);
  message other;
  (void) copying
    .parse(
      R"({"action":"processRecords","records":[{"data":"eA==","partitionKey":"p","sequenceNumber":"1"}]})",
      other)
    .error();
  message again;
  const auto why_again = copying.parse(line, again).error();
  SHARDFLOW_FUZZ_CHECK(why_again == why_a);
  if (why_a.empty()) // a message that is not one may be half filled; only the reason counts
    SHARDFLOW_FUZZ_CHECK(same(first, why_again, again));
  return 0;
}
