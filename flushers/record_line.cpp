#include "flushers/record_line.hpp"

#include <simdjson.h>

namespace shardflow {

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0; // start of the current run of bytes that need no escape
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

void append_line(std::string& out, const stream_record& x) {
  out += "{\"k\":";
  append_json_string(out, x.partition_key);
  if (x.arrival_ms) {
    out += ",\"t\":";
    out += std::to_string(*x.arrival_ms);
  }
  out += ",\"d\":";
  append_json_string(out, x.data);
  out += "}\n";
}

std::string parse_line(std::string_view line, stream_record& out) {
  // simdjson needs readable padding after the text; lines are short, so copy into a padded buffer.
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string buf;
  buf.assign(line.data(), line.size());
  buf.append(simdjson::SIMDJSON_PADDING, '\0');
  auto doc = parser.iterate(buf.data(), line.size(), buf.size());
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS)
    return "not a JSON object";
  bool has_key = false;
  bool has_data = false;
  out.arrival_ms.reset();
  for (auto field : obj) {
    std::string_view name;
    if (field.unescaped_key().get(name) != simdjson::SUCCESS)
      return "a field name is not valid JSON";
    if (name == "k") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS)
        return "\"k\" (the partition key) is not a string";
      out.partition_key.assign(v);
      has_key = true;
    } else if (name == "d") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS)
        return "\"d\" (the data) is not a string";
      out.data.assign(v);
      has_data = true;
    } else if (name == "t") {
      std::int64_t t = 0;
      if (field.value().get_int64().get(t) != simdjson::SUCCESS)
        return "\"t\" (the arrival time) is not an integer";
      out.arrival_ms = t;
    } // other fields are skipped by the iteration
  }
  if (!has_key)
    return "no \"k\" (partition key)";
  if (!has_data)
    return "no \"d\" (data)";
  return {};
}

} // namespace shardflow
