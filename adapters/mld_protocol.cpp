#include "adapters/mld_protocol.hpp"

#include <simdjson.h>

#include <fmt/format.h>

#include "flushers/record_line.hpp"

namespace shardflow::mld {

namespace {

using simdjson::dom::element;

std::optional<std::string> nullable_string(element obj, const char* key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS || v.is_null())
    return std::nullopt;
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS)
    return std::string{s};
  return simdjson::minify(v); // a number where a string belongs: keep its text
}

std::optional<std::int64_t> nullable_int(element obj, const char* key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS || v.is_null())
    return std::nullopt;
  std::int64_t i = 0;
  if (v.get_int64().get(i) == simdjson::SUCCESS)
    return i;
  std::uint64_t u = 0;
  if (v.get_uint64().get(u) == simdjson::SUCCESS)
    return static_cast<std::int64_t>(u);
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) {
    try {
      return std::stoll(std::string{s});
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// approximateArrivalTimestamp: epoch ms, or (KCL 2.0.x) {"epochSecond":s,"nano":n}.
std::optional<std::int64_t> arrival_of(element rec) {
  element v;
  if (rec["approximateArrivalTimestamp"].get(v) != simdjson::SUCCESS || v.is_null())
    return std::nullopt;
  if (v.is_object()) {
    auto s = nullable_int(v, "epochSecond");
    auto n = nullable_int(v, "nano");
    if (!s)
      return std::nullopt;
    return *s * 1000 + (n ? *n / 1'000'000 : 0);
  }
  return nullable_int(rec, "approximateArrivalTimestamp");
}

} // namespace

struct message_parser::impl {
  simdjson::dom::parser parser;
};

message_parser::message_parser() : impl_(std::make_unique<impl>()) {
  // nop
}

message_parser::~message_parser() = default;

std::string message_parser::parse(std::string_view line, message& out, bool padded) {
  element doc;
  if (auto err = impl_->parser.parse(line.data(), line.size(), !padded).get(doc); err)
    return fmt::format("not JSON ({})", simdjson::error_message(err));
  if (!doc.is_object())
    return "not a JSON object";
  auto action = nullable_string(doc, "action");
  if (!action)
    return "no action";
  out = message{};
  out.action = *action;
  const auto& a = out.action;
  using k = message::kind;
  if (a == "initialize") {
    out.what = k::initialize;
    out.shard_id = nullable_string(doc, "shardId").value_or("");
    element v;
    out.has_sequence_key = doc["sequenceNumber"].get(v) == simdjson::SUCCESS;
    out.sequence_number = nullable_string(doc, "sequenceNumber");
    if (auto s = nullable_int(doc, "subSequenceNumber"); s && *s >= 0)
      out.sub_sequence_number = static_cast<std::uint64_t>(*s);
  } else if (a == "processRecords") {
    out.what = k::process_records;
    out.millis_behind_latest = nullable_int(doc, "millisBehindLatest");
    simdjson::dom::array records;
    if (doc["records"].get(records) == simdjson::SUCCESS) {
      out.records.reserve(records.size());
      for (element r : records) {
        simdjson::dom::object fields;
        if (r.get_object().get(fields) != simdjson::SUCCESS)
          continue;
        // One pass over the record's fields (looking each key up would scan them again and again).
        wire_record w;
        w.data_null = true;
        for (auto field : fields) {
          const auto key = field.key;
          std::string_view text;
          if (key == "data") {
            w.data_null = field.value.get_string().get(text) != simdjson::SUCCESS;
            w.data_base64 = text;
          } else if (key == "partitionKey") {
            if (field.value.get_string().get(text) == simdjson::SUCCESS)
              w.partition_key = text;
          } else if (key == "sequenceNumber") {
            if (field.value.get_string().get(text) == simdjson::SUCCESS)
              w.sequence_number = text;
          } else if (key == "subSequenceNumber") {
            std::int64_t sub = 0;
            if (field.value.get_int64().get(sub) == simdjson::SUCCESS && sub >= 0)
              w.sub_sequence_number = static_cast<std::uint64_t>(sub);
          } else if (key == "approximateArrivalTimestamp") {
            std::int64_t ms = 0;
            if (field.value.get_int64().get(ms) == simdjson::SUCCESS)
              w.arrival_ms = ms;
            else if (field.value.is_object())
              w.arrival_ms = arrival_of(r);
          }
        }
        out.records.push_back(std::move(w));
      }
    }
  } else if (a == "shutdown") {
    out.what = k::shutdown;
    out.reason = nullable_string(doc, "reason").value_or("");
  } else if (a == "shutdownRequested") {
    out.what = k::shutdown_requested;
  } else if (a == "leaseLost") {
    out.what = k::lease_lost;
  } else if (a == "shardEnded") {
    out.what = k::shard_ended;
  } else if (a == "checkpoint") {
    out.what = k::checkpoint;
    out.error = nullable_string(doc, "error");
  } else {
    out.what = k::other;
  }
  return {};
}

std::string status_line(const std::string& action) {
  std::string out = "{\"action\":\"status\",\"responseFor\":";
  append_json_string(out, action);
  out += "}";
  return out;
}

std::string checkpoint_line(bool v2, const std::optional<std::string>& sequence,
                            std::optional<std::uint64_t> sub) {
  std::string out = "{\"action\":\"checkpoint\",";
  std::string seq = "null";
  if (sequence) {
    seq.clear();
    append_json_string(seq, *sequence);
  }
  if (!v2)
    return out + "\"checkpoint\":" + seq + "}";
  out += "\"sequenceNumber\":" + seq + ",\"subSequenceNumber\":";
  out += sequence && sub ? std::to_string(*sub) : std::string{"null"};
  return out + "}";
}

} // namespace shardflow::mld
