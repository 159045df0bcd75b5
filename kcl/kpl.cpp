#include <shardflow/kcl/kpl.hpp>

#include <algorithm>
#include <array>
#include <cstring>

#include <zlib.h>

#include <fmt/format.h>

#include "kpl_agg.pb.h" // generated from kcl/proto/kpl_agg.proto
#include <shardflow/kcl/md5.hpp>

namespace shardflow::kpl {

namespace {

constexpr std::array<unsigned char, 3> magic_tail = {0x89, 0x9A, 0xC2};
constexpr std::size_t md5_size = 16;

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

enum class inflated { whole, broken, too_big };

// Inflates the zlib stream `in` into `out`, stopping as soon as it would pass `cap` bytes.
inflated inflate_at_most(std::string_view in, std::size_t cap, std::vector<char>& out) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK)
    return inflated::broken;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 15];
  int rc = Z_OK;
  while (rc == Z_OK) {
    // One byte past the cap at most: enough to tell that the stream goes on.
    const std::size_t left = cap - std::min(cap, out.size());
    const std::size_t room = left < sizeof buf ? left + 1 : sizeof buf;
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), buf, buf + (room - zs.avail_out));
    if (out.size() > cap)
      break;
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
      break; // truncated input
  }
  inflateEnd(&zs);
  if (out.size() > cap) {
    out.clear();
    out.shrink_to_fit();
    return inflated::too_big;
  }
  return rc == Z_STREAM_END ? inflated::whole : inflated::broken;
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

// Reads the protobuf wire format in place: varints, and length-delimited fields as views. Accepts
// what libprotobuf's parser accepts: values of up to ten bytes, keys of up to five (bits past 32
// dropped), lengths of up to five (below 2^31), groups nested up to its recursion limit.
class wire_reader {
public:
  // Nesting allowed, counting messages and groups from the outermost message (libprotobuf's
  // default recursion limit).
  static constexpr int max_depth = 100;

  explicit wire_reader(std::string_view bytes, int depth = 0)
    : at_(bytes.data()), end_(bytes.data() + bytes.size()), depth_(depth) {
  }

  bool done() const noexcept {
    return at_ == end_;
  }

  bool varint(std::uint64_t& out) noexcept {
    return varint_of(10, out);
  }

  // Reads a field's key: its number (> 0) and wire type.
  bool tag(std::uint32_t& field, std::uint32_t& type) noexcept {
    std::uint64_t key = 0;
    if (!varint_of(5, key))
      return false;
    const auto low = static_cast<std::uint32_t>(key);
    field = low >> 3;
    type = low & 7;
    return field != 0;
  }

  bool bytes(std::string_view& out) noexcept {
    std::uint64_t size = 0;
    if (!varint_of(5, size) || size >= (std::uint64_t{1} << 31)
        || size > static_cast<std::uint64_t>(end_ - at_))
      return false;
    out = std::string_view{at_, static_cast<std::size_t>(size)};
    at_ += size;
    return true;
  }

  // The depth of what this reader reads, for the messages nested in it.
  int depth() const noexcept {
    return depth_;
  }

  // Skips the value of a field this reader does not know (groups included, as protobuf does).
  bool skip(std::uint32_t field, std::uint32_t type) noexcept {
    return skip_at(field, type, depth_);
  }

private:
  // A varint of at most `max_bytes` bytes; bits past 64 are dropped.
  bool varint_of(int max_bytes, std::uint64_t& out) noexcept {
    if (at_ != end_ && static_cast<unsigned char>(*at_) < 0x80) { // most keys, lengths and indexes
      out = static_cast<unsigned char>(*at_++);
      return true;
    }
    out = 0;
    for (int i = 0; i < max_bytes && at_ != end_; ++i) {
      const auto byte = static_cast<unsigned char>(*at_++);
      out |= static_cast<std::uint64_t>(byte & 0x7F) << (7 * i);
      if (byte < 0x80)
        return true;
    }
    return false; // cut short, or too long
  }

  bool skip_at(std::uint32_t field, std::uint32_t type, int depth) noexcept {
    std::uint64_t ignored = 0;
    std::string_view view;
    switch (type) {
      case 0:
        return varint(ignored);
      case 1:
        return advance(8);
      case 2:
        return bytes(view);
      case 3: { // start group: fields up to the matching end group
        if (depth >= max_depth)
          return false;
        std::uint32_t f = 0;
        std::uint32_t t = 0;
        while (tag(f, t)) {
          if (t == 4)
            return f == field;
          if (!skip_at(f, t, depth + 1))
            return false;
        }
        return false;
      }
      case 5:
        return advance(4);
      default: // an end group without a start, or no wire type at all
        return false;
    }
  }

  bool advance(std::size_t n) noexcept {
    if (static_cast<std::size_t>(end_ - at_) < n)
      return false;
    at_ += n;
    return true;
  }

  const char* at_;
  const char* end_;
  int depth_;
};

constexpr std::uint32_t varint_type = 0;
constexpr std::uint32_t delimited_type = 2;

struct wire_record {
  std::uint64_t key = 0;
  std::optional<std::uint64_t> hash_key;
  std::string_view data;
};

// Reads a Tag (kpl_agg.proto): its key is required.
bool read_tag(std::string_view bytes, int depth) noexcept {
  wire_reader in{bytes, depth};
  bool has_key = false;
  std::uint32_t field = 0;
  std::uint32_t type = 0;
  while (!in.done()) {
    if (!in.tag(field, type) || !in.skip(field, type))
      return false;
    has_key = has_key || (field == 1 && type == delimited_type);
  }
  return has_key;
}

// Reads a Record (kpl_agg.proto); its key index and data are required.
bool read_record(std::string_view bytes, int depth, wire_record& r) noexcept {
  // What the KPL writes for a record of less than 128 bytes whose key index is below 128, and no
  // explicit hash key or tags: 08 <index> 1A <length> <data>, read without the general loop.
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 4 && b[0] == 0x08 && b[1] < 0x80 && b[2] == 0x1A && b[3] < 0x80
      && bytes.size() == 4u + b[3]) {
    r.key = b[1];
    r.data = bytes.substr(4);
    return true;
  }
  wire_reader in{bytes, depth};
  bool has_key = false;
  bool has_data = false;
  std::uint32_t field = 0;
  std::uint32_t type = 0;
  while (!in.done()) {
    if (!in.tag(field, type))
      return false;
    std::string_view tag;
    if (field == 1 && type == varint_type) {
      has_key = in.varint(r.key);
      if (!has_key)
        return false;
    } else if (field == 2 && type == varint_type) {
      std::uint64_t v = 0;
      if (!in.varint(v))
        return false;
      r.hash_key = v;
    } else if (field == 3 && type == delimited_type) {
      has_data = in.bytes(r.data);
      if (!has_data)
        return false;
    } else if (field == 4 && type == delimited_type) {
      if (!in.bytes(tag) || !read_tag(tag, in.depth() + 1))
        return false;
    } else if (!in.skip(field, type)) {
      return false;
    }
  }
  return has_key && has_data;
}

enum class read_outcome { ok, broken, too_many };

// Reads an AggregatedRecord (kpl_agg.proto) into the key tables and the records, stopping at the
// first record past `max_records`.
read_outcome
read_aggregate(std::string_view proto, std::size_t max_records, std::vector<std::string_view>& keys,
               std::vector<std::string_view>& hash_keys, std::vector<wire_record>& records) {
  wire_reader in{proto};
  std::uint32_t field = 0;
  std::uint32_t type = 0;
  while (!in.done()) {
    if (!in.tag(field, type))
      return read_outcome::broken;
    if (field == 1 && type == delimited_type) {
      if (!in.bytes(keys.emplace_back()))
        return read_outcome::broken;
    } else if (field == 2 && type == delimited_type) {
      if (!in.bytes(hash_keys.emplace_back()))
        return read_outcome::broken;
    } else if (field == 3 && type == delimited_type) {
      if (records.size() == max_records)
        return read_outcome::too_many;
      std::string_view record;
      if (!in.bytes(record) || !read_record(record, in.depth() + 1, records.emplace_back()))
        return read_outcome::broken;
    } else if (!in.skip(field, type)) {
      return read_outcome::broken;
    }
  }
  return read_outcome::ok;
}

void mark_corrupt(unpack_result& r, std::string why) {
  r.what = unpack_result::kind::corrupt;
  r.why = std::move(why);
  r.records.clear();
}

// Scratch tables of read_user_records, released when one aggregate made them big.
template <class T>
void reset_scratch(std::vector<T>& v) {
  constexpr std::size_t keep = 1 << 16;
  v.clear();
  if (v.capacity() > keep)
    v.shrink_to_fit();
}

// Turns the aggregate `proto` (its MD5 checked) into `r.records`, at most `max_records` of them
// (`limit` names that bound in the message).
void read_user_records(std::string_view proto, std::size_t max_records, const char* limit,
                       unpack_result& r) {
  thread_local std::vector<std::string_view> keys;
  thread_local std::vector<std::string_view> hash_keys;
  thread_local std::vector<wire_record> records;
  reset_scratch(keys);
  reset_scratch(hash_keys);
  reset_scratch(records);
  switch (read_aggregate(proto, max_records, keys, hash_keys, records)) {
    case read_outcome::broken:
      return mark_corrupt(r, "the aggregate is not a valid protobuf");
    case read_outcome::too_many:
      return mark_corrupt(r, fmt::format("the aggregate holds more than {} user records ({})",
                                         max_records, limit));
    case read_outcome::ok:
      break;
  }
  r.records.reserve(records.size());
  for (const auto& w : records) {
    if (w.key >= keys.size() || (w.hash_key && *w.hash_key >= hash_keys.size()))
      return mark_corrupt(r, "a key index of the aggregate is out of range");
    auto& u = r.records.emplace_back();
    u.partition_key = keys[static_cast<std::size_t>(w.key)];
    if (w.hash_key)
      u.explicit_hash_key = hash_keys[static_cast<std::size_t>(*w.hash_key)];
    u.data = w.data;
  }
  r.what = unpack_result::kind::aggregate;
}

// What is left of a limit that several aggregates share: the smaller of the per-aggregate and
// the per-call bound, and the name of the one that binds.
struct budget {
  std::size_t per_item;
  std::size_t left;
  const char* item_name;
  const char* call_name;

  std::size_t cap() const noexcept {
    return std::min(per_item, left);
  }
  const char* binding() const noexcept {
    return per_item <= left ? item_name : call_name;
  }
  void spend(std::size_t n) noexcept {
    left -= std::min(left, n);
  }
};

// Reads `data`'s magic and, for a deflated aggregate, inflates it into `r.inflated`; returns the
// aggregate's protobuf and MD5, or nothing when `data` is plain or `r` was marked corrupt.
std::optional<std::string_view> body_of(std::string_view data, bool erlmld_magics, budget& inflate,
                                        unpack_result& r) {
  const auto m = magic_of(data);
  if (!m || (!erlmld_magics && *m != magic::standard))
    return std::nullopt; // plain
  std::string_view body = data.substr(4);
  if (*m == magic::erlmld_deflated) {
    const auto cap = inflate.cap();
    const auto outcome = inflate_at_most(body, cap, r.inflated);
    inflate.spend(r.inflated.size());
    if (outcome == inflated::too_big) {
      mark_corrupt(r, fmt::format("the compressed aggregate inflates past {} bytes ({})", cap,
                                  inflate.binding()));
      return std::nullopt;
    }
    if (outcome == inflated::broken) {
      mark_corrupt(r, "the compressed aggregate does not inflate");
      return std::nullopt;
    }
    body = std::string_view{r.inflated.data(), r.inflated.size()};
  }
  if (body.size() <= md5_size) {
    // The KCL's rule: a standard aggregate too short for its MD5 is a plain record.
    if (*m != magic::standard)
      mark_corrupt(r, "too short for an aggregate");
    return std::nullopt;
  }
  return body;
}

} // namespace

void unpack_all(const std::string_view* data, std::size_t n, bool erlmld_magics,
                std::vector<unpack_result>& out, const unpack_limits& limits) {
  out.resize(n);
  budget inflate{limits.max_inflated_bytes, limits.max_inflated_bytes_per_call,
                 "max_inflated_bytes", "max_inflated_bytes_per_call"};
  budget users{limits.max_user_records, limits.max_user_records_per_call, "max_user_records",
               "max_user_records_per_call"};
  // The aggregates' protobufs, their MD5s computed together (md5::many), then each one read.
  thread_local std::vector<std::string_view> protos;
  thread_local std::vector<std::size_t> owners;
  thread_local std::vector<md5::digest> digests;
  protos.clear();
  owners.clear();
  for (std::size_t i = 0; i < n; ++i) {
    auto& r = out[i];
    r.what = unpack_result::kind::plain;
    r.records.clear();
    r.why.clear();
    r.inflated.clear();
    const auto body = body_of(data[i], erlmld_magics, inflate, r);
    if (!body)
      continue;
    protos.push_back(body->substr(0, body->size() - md5_size)); // its MD5 follows it
    owners.push_back(i);
  }
  digests.resize(protos.size());
  md5::many(protos.data(), protos.size(), digests.data());
  for (std::size_t k = 0; k < protos.size(); ++k) {
    auto& r = out[owners[k]];
    if (std::memcmp(digests[k].data(), protos[k].data() + protos[k].size(), md5_size) != 0) {
      mark_corrupt(r, "the MD5 of the aggregate does not match");
      continue;
    }
    read_user_records(protos[k], users.cap(), users.binding(), r);
    users.spend(r.records.size());
  }
}

unpack_result unpack(std::string_view data, bool erlmld_magics, const unpack_limits& limits) {
  std::vector<unpack_result> out;
  unpack_all(&data, 1, erlmld_magics, out, limits);
  return std::move(out.front()); // moving keeps `inflated`'s buffer, which the views point into
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
  const auto digest = md5::of(proto);
  std::string body = proto;
  body.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  std::string out;
  out.push_back(
    static_cast<char>(m == magic::standard ? 0xF3 : (m == magic::erlmld_plain ? 0x00 : 0x01)));
  out.append(reinterpret_cast<const char*>(magic_tail.data()), magic_tail.size());
  out += m == magic::erlmld_deflated ? deflate_all(body) : body;
  keys_.clear();
  hash_keys_.clear();
  records_.clear();
  return out;
}

} // namespace shardflow::kpl
