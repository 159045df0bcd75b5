// fuzz/kpl.cpp - the KPL aggregate reader, differential against libprotobuf, and its limits.
//
// Input: a mode byte, then the rest.
//   mode 0: the rest is a protobuf. Wrapped as a standard aggregate (correct MD5) and as erlmld's
//           deflated one, unpack must agree with libprotobuf's AggregatedRecord: corrupt exactly
//           when libprotobuf refuses it or a key index is out of range, else the same user records.
//   mode 1: the rest is cut in records at 0xFF bytes; unpack_all over them gives what unpack gives
//           one by one, and every view lies inside its record or its inflated bytes.
//   mode 2: two bytes of limits, then a record: under those limits, unpack gives the unlimited
//           result when that result is within them, else a corrupt aggregate (a plain record
//           stays plain).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include "fuzz/check.hpp"
#include "kpl_agg.pb.h"
#include <shardflow/kcl/kpl.hpp>
#include <shardflow/kcl/md5.hpp>

namespace {

namespace kpl = shardflow::kpl;
using kind = kpl::unpack_result::kind;

std::string with_md5(const std::string& proto) {
  const auto d = shardflow::md5::of(proto);
  return proto + std::string{reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string deflated(const std::string& body) {
  uLongf size = compressBound(static_cast<uLong>(body.size()));
  std::string out(size, '\0');
  SHARDFLOW_FUZZ_CHECK(compress(reinterpret_cast<Bytef*>(out.data()), &size,
                                reinterpret_cast<const Bytef*>(body.data()),
                                static_cast<uLong>(body.size()))
                       == Z_OK);
  out.resize(size);
  return out;
}

// What libprotobuf makes of `proto`: nothing when it refuses it or an index is out of range.
std::optional<std::vector<kpl::user_record>> reference(const std::string& proto) {
  kpl::AggregatedRecord agg;
  if (!agg.ParseFromString(proto))
    return std::nullopt;
  std::vector<kpl::user_record> out;
  const auto keys = static_cast<std::uint64_t>(agg.partition_key_table_size());
  const auto hash_keys = static_cast<std::uint64_t>(agg.explicit_hash_key_table_size());
  for (const auto& r : agg.records()) {
    if (r.partition_key_index() >= keys
        || (r.has_explicit_hash_key_index() && r.explicit_hash_key_index() >= hash_keys))
      return std::nullopt;
    auto& u = out.emplace_back();
    u.partition_key = agg.partition_key_table(static_cast<int>(r.partition_key_index()));
    if (r.has_explicit_hash_key_index())
      u.explicit_hash_key
        = agg.explicit_hash_key_table(static_cast<int>(r.explicit_hash_key_index()));
    u.data = r.data();
  }
  return out;
}

void check_against(const std::optional<std::vector<kpl::user_record>>& want,
                   const kpl::unpack_result& got) {
  if (!want) {
    SHARDFLOW_FUZZ_CHECK(got.what == kind::corrupt);
    return;
  }
  SHARDFLOW_FUZZ_CHECK(got.what == kind::aggregate);
  SHARDFLOW_FUZZ_CHECK(got.records.size() == want->size());
  for (std::size_t i = 0; i < want->size(); ++i) {
    const auto& u = got.records[i];
    const auto& w = (*want)[i];
    SHARDFLOW_FUZZ_CHECK(u.partition_key == w.partition_key && u.data == w.data);
    SHARDFLOW_FUZZ_CHECK(u.explicit_hash_key.has_value() == w.explicit_hash_key.has_value());
    if (u.explicit_hash_key)
      SHARDFLOW_FUZZ_CHECK(*u.explicit_hash_key == *w.explicit_hash_key);
  }
}

void differential(const std::string& proto) {
  if (proto.empty())
    return; // no room for an aggregate: the KCL's plain record (kpl_test covers it)
  const auto want = reference(proto);
  const auto body = with_md5(proto);
  const auto standard = std::string{"\xF3\x89\x9A\xC2"} + body;
  check_against(want, kpl::unpack(standard));
  const auto packed = std::string{"\x01\x89\x9A\xC2"} + deflated(body);
  check_against(want, kpl::unpack(packed));
}

bool inside(std::string_view v, std::string_view whole) {
  return v.empty()
         || (v.data() >= whole.data() && v.data() + v.size() <= whole.data() + whole.size());
}

void check_views(const kpl::unpack_result& r, std::string_view record) {
  const std::string_view inflated{r.inflated.data(), r.inflated.size()};
  for (const auto& u : r.records)
    for (auto v : {u.partition_key, u.data, u.explicit_hash_key.value_or(std::string_view{})})
      SHARDFLOW_FUZZ_CHECK(inside(v, record) || inside(v, inflated));
}

bool same(const kpl::unpack_result& x, const kpl::unpack_result& y) {
  if (x.what != y.what || x.why != y.why || x.records.size() != y.records.size())
    return false;
  for (std::size_t i = 0; i < x.records.size(); ++i)
    if (x.records[i].partition_key != y.records[i].partition_key
        || x.records[i].data != y.records[i].data
        || x.records[i].explicit_hash_key != y.records[i].explicit_hash_key)
      return false;
  return true;
}

void batch(std::string_view in) {
  std::vector<std::string_view> records;
  for (std::size_t cut; (cut = in.find('\xFF')) != std::string_view::npos;
       in.remove_prefix(cut + 1))
    records.push_back(in.substr(0, cut));
  records.push_back(in);
  std::vector<kpl::unpack_result> all;
  kpl::unpack_all(records.data(), records.size(), true, all);
  SHARDFLOW_FUZZ_CHECK(all.size() == records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    check_views(all[i], records[i]);
    SHARDFLOW_FUZZ_CHECK(same(all[i], kpl::unpack(records[i])));
  }
}

void limited(std::string_view in) {
  if (in.size() < 2)
    return;
  kpl::unpack_limits limits;
  limits.max_inflated_bytes = static_cast<unsigned char>(in[0]) * std::size_t{16};
  limits.max_user_records = static_cast<unsigned char>(in[1]) % 16;
  in.remove_prefix(2);
  const auto free = kpl::unpack(in);
  const auto bound = kpl::unpack(in, true, limits);
  check_views(bound, in);
  const bool within = free.inflated.size() <= limits.max_inflated_bytes
                      && free.records.size() <= limits.max_user_records;
  if (free.what != kind::aggregate) // plain stays plain, corrupt corrupt (maybe for a cap first)
    SHARDFLOW_FUZZ_CHECK(bound.what == free.what && bound.records.empty());
  else if (within)
    SHARDFLOW_FUZZ_CHECK(same(free, bound));
  else
    SHARDFLOW_FUZZ_CHECK(bound.what == kind::corrupt && bound.records.empty());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 3) {
    case 0:
      differential(std::string{rest});
      break;
    case 1:
      batch(rest);
      break;
    default:
      limited(rest);
      break;
  }
  return 0;
}
