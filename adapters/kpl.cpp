#include "adapters/kpl.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <openssl/evp.h>
#include <zlib.h>

#include <fmt/format.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "kpl_agg.pb.h" // generated from adapters/proto/kpl_agg.proto

namespace shardflow::kpl {

namespace {

constexpr std::array<unsigned char, 3> magic_tail = {0x89, 0x9A, 0xC2};
constexpr std::size_t md5_size = 16;

std::array<unsigned char, md5_size> md5(std::string_view bytes) {
  // One digest context per thread: EVP_Digest would allocate and free one per call.
  struct context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~context() {
      EVP_MD_CTX_free(ctx);
    }
  };
  thread_local context c;
  std::array<unsigned char, md5_size> out{};
  unsigned int n = 0;
  EVP_DigestInit_ex(c.ctx, EVP_md5(), nullptr);
  EVP_DigestUpdate(c.ctx, bytes.data(), bytes.size());
  EVP_DigestFinal_ex(c.ctx, out.data(), &n);
  return out;
}

std::optional<magic> magic_of(std::string_view data) {
  if (data.size() < 4 || std::memcmp(data.data() + 1, magic_tail.data(), 3) != 0)
    return std::nullopt;
  switch (static_cast<unsigned char>(data[0])) {
    case 0xF3:
      return magic::standard;
    case 0x00:
      return magic::erlmld_plain;
    case 0x01:
      return magic::erlmld_deflated;
  }
  return std::nullopt;
}

bool inflate_all(std::string_view in, std::vector<char>& out) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK)
    return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 15];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
      break; // truncated input
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

std::string deflate_all(std::string_view in) {
  uLongf size = compressBound(static_cast<uLong>(in.size()));
  std::string out(size, '\0');
  compress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(in.data()),
           static_cast<uLong>(in.size()));
  out.resize(size);
  return out;
}

} // namespace

bool may_be_aggregate(std::string_view data, bool erlmld_magics) noexcept {
  auto m = magic_of(data);
  return m && (erlmld_magics || *m == magic::standard);
}

namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

// Reads a length-delimited field's bytes as a view into the stream's buffer.
bool read_view(CodedInputStream& in, const char* base, std::string_view& out) {
  std::uint32_t len = 0;
  if (!in.ReadVarint32(&len))
    return false;
  const auto at = static_cast<std::size_t>(in.CurrentPosition());
  if (!in.Skip(static_cast<int>(len)))
    return false;
  out = std::string_view{base + at, len};
  return true;
}

struct wire_record {
  std::uint64_t key = 0;
  std::optional<std::uint64_t> hash_key;
  std::string_view data;
  bool has_key = false;
  bool has_data = false;
};

// Reads an AggregatedRecord (kpl_agg.proto) from `proto` without building messages.
bool read_aggregate(std::string_view proto, std::vector<std::string_view>& keys,
                    std::vector<std::string_view>& hash_keys, std::vector<wire_record>& records) {
  CodedInputStream in{reinterpret_cast<const std::uint8_t*>(proto.data()), static_cast<int>(proto.size())};
  const char* base = proto.data();
  while (const auto tag = in.ReadTag()) {
    const auto field = WireFormatLite::GetTagFieldNumber(tag);
    const auto type = WireFormatLite::GetTagWireType(tag);
    const bool delimited = type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (field == 1 && delimited) {
      if (!read_view(in, base, keys.emplace_back()))
        return false;
    } else if (field == 2 && delimited) {
      if (!read_view(in, base, hash_keys.emplace_back()))
        return false;
    } else if (field == 3 && delimited) {
      std::uint32_t len = 0;
      if (!in.ReadVarint32(&len))
        return false;
      const auto limit = in.PushLimit(static_cast<int>(len));
      auto& r = records.emplace_back();
      while (const auto t = in.ReadTag()) {
        const auto f = WireFormatLite::GetTagFieldNumber(t);
        const auto w = WireFormatLite::GetTagWireType(t);
        if (f == 1 && w == WireFormatLite::WIRETYPE_VARINT) {
          if (!in.ReadVarint64(&r.key))
            return false;
          r.has_key = true;
        } else if (f == 2 && w == WireFormatLite::WIRETYPE_VARINT) {
          std::uint64_t v = 0;
          if (!in.ReadVarint64(&v))
            return false;
          r.hash_key = v;
        } else if (f == 3 && w == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
          if (!read_view(in, base, r.data))
            return false;
          r.has_data = true;
        } else if (!WireFormatLite::SkipField(&in, t)) { // tags and anything unknown
          return false;
        }
      }
      if (!in.ConsumedEntireMessage())
        return false;
      in.PopLimit(limit);
      if (!r.has_key || !r.has_data) // required fields
        return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage() || in.CurrentPosition() == static_cast<int>(proto.size());
}

} // namespace

unpack_result unpack(std::string_view data, bool erlmld_magics) {
  unpack_result result;
  auto m = magic_of(data);
  if (!m || (!erlmld_magics && *m != magic::standard))
    return result; // plain
  std::string_view body = data.substr(4);
  if (*m == magic::erlmld_deflated) {
    if (!inflate_all(body, result.inflated)) {
      result.what = unpack_result::kind::corrupt;
      result.why = "the compressed aggregate does not inflate";
      return result;
    }
    body = std::string_view{result.inflated.data(), result.inflated.size()};
  }
  if (body.size() <= md5_size) {
    if (*m == magic::standard)
      return result; // the KCL's rule: too short to be an aggregate, so a plain record
    result.what = unpack_result::kind::corrupt;
    result.why = "too short for an aggregate";
    return result;
  }
  const auto proto = body.substr(0, body.size() - md5_size);
  const auto digest = md5(proto);
  if (std::memcmp(digest.data(), body.data() + proto.size(), md5_size) != 0) {
    result.what = unpack_result::kind::corrupt;
    result.why = "the MD5 of the aggregate does not match";
    return result;
  }
  thread_local std::vector<std::string_view> keys;
  thread_local std::vector<std::string_view> hash_keys;
  thread_local std::vector<wire_record> records;
  keys.clear();
  hash_keys.clear();
  records.clear();
  if (!read_aggregate(proto, keys, hash_keys, records)) {
    result.what = unpack_result::kind::corrupt;
    result.why = "the aggregate is not a valid protobuf";
    return result;
  }
  result.records.reserve(records.size());
  for (const auto& r : records) {
    if (r.key >= keys.size() || (r.hash_key && *r.hash_key >= hash_keys.size())) {
      result.records.clear();
      result.what = unpack_result::kind::corrupt;
      result.why = "a key index of the aggregate is out of range";
      return result;
    }
    user_record_view u;
    u.partition_key = keys[static_cast<std::size_t>(r.key)];
    if (r.hash_key)
      u.explicit_hash_key = hash_keys[static_cast<std::size_t>(*r.hash_key)];
    u.data = r.data;
    result.records.push_back(u);
  }
  result.what = unpack_result::kind::aggregate;
  return result;
}

void aggregator::add(const std::string& partition_key, std::string data,
                     const std::optional<std::string>& explicit_hash_key) {
  records_.push_back({partition_key, explicit_hash_key, std::move(data)});
}

std::string aggregator::build(magic m) {
  AggregatedRecord agg;
  auto index_of = [](std::vector<std::string>& table, const std::string& key) {
    auto i = std::find(table.begin(), table.end(), key);
    if (i == table.end()) {
      table.push_back(key);
      return table.size() - 1;
    }
    return static_cast<std::size_t>(i - table.begin());
  };
  for (auto& u : records_) {
    auto* r = agg.add_records();
    r->set_partition_key_index(index_of(keys_, u.partition_key));
    if (u.explicit_hash_key)
      r->set_explicit_hash_key_index(index_of(hash_keys_, *u.explicit_hash_key));
    r->set_data(u.data);
  }
  for (auto& k : keys_)
    agg.add_partition_key_table(k);
  for (auto& k : hash_keys_)
    agg.add_explicit_hash_key_table(k);
  std::string proto;
  agg.SerializeToString(&proto);
  const auto digest = md5(proto);
  std::string body = proto;
  body.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  std::string out;
  out.push_back(static_cast<char>(m == magic::standard ? 0xF3 : (m == magic::erlmld_plain ? 0x00 : 0x01)));
  out.append(reinterpret_cast<const char*>(magic_tail.data()), magic_tail.size());
  out += m == magic::erlmld_deflated ? deflate_all(body) : body;
  keys_.clear();
  hash_keys_.clear();
  records_.clear();
  return out;
}

} // namespace shardflow::kpl
