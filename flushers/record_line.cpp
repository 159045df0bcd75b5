#include <shardflow/flushers/record_line.hpp>

#include <fmt/format.h>
#include <simdjson.h>

#include <shardflow/flushers/base64.hpp>

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

namespace {

// Appends `,"<text_key>":"<text>"` when `text` is valid UTF-8, else `,"<b64_key>":"<base64>"`,
// so that every line is valid UTF-8 JSON whatever the bytes (the leading comma when `comma`).
void append_text_or_base64(std::string& out, bool comma, const char* text_key, const char* b64_key,
                           std::string_view text) {
  if (comma)
    out.push_back(',');
  out.push_back('"');
  if (simdjson::validate_utf8(text.data(), text.size())) {
    out += text_key;
    out += "\":";
    append_json_string(out, text);
  } else {
    out += b64_key;
    out += "\":\"";
    out += base64::encode(text);
    out.push_back('"');
  }
}

} // namespace

void append_line(std::string& out, const stream_record& x) {
  out.push_back('{');
  append_text_or_base64(out, false, "k", "kb", x.partition_key);
  if (x.arrival_ms) {
    out += ",\"t\":";
    out += std::to_string(*x.arrival_ms);
  }
  if (x.attributes && !x.attributes->empty()) {
    out += ",\"h\":[";
    const char* sep = "{";
    for (const auto& [key, value] : *x.attributes) {
      out += sep;
      sep = ",{";
      append_text_or_base64(out, false, "k", "kb", key);
      append_text_or_base64(out, true, "v", "vb", value);
      out.push_back('}');
    }
    out.push_back(']');
  }
  append_text_or_base64(out, true, "d", "b", x.data);
  out += "}\n";
}

namespace {

// Returns where the first JSON value of `text` ends (just past its closing bracket), or npos when it
// does not close. Only for diagnosing a line the parser refused: it does not validate.
std::size_t end_of_first_value(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Says why simdjson refused `line`.
std::string reason_of(simdjson::error_code err, std::string_view line) {
  if (err == simdjson::UTF8_ERROR)
    return "not valid UTF-8";
  if (err == simdjson::EMPTY)
    return "not a JSON object";
  const auto first = line.find_first_not_of(" \t\r");
  const auto end = first == std::string_view::npos ? first : end_of_first_value(line.substr(first));
  if (end != std::string_view::npos
      && line.find_first_not_of(" \t\r", first + end) != std::string_view::npos)
    return fmt::format("content after the JSON object at byte {} (two records on one line?)",
                       first + end + 1);
  return fmt::format("not valid JSON ({})", simdjson::error_message(err));
}

// Reads the string field `name` of a record into `out`; returns why not, or an empty string.
std::string string_field(simdjson::dom::element v, const char* what, std::string_view& out) {
  if (v.get_string().get(out) != simdjson::SUCCESS)
    return fmt::format("{} is not a string", what);
  return {};
}

// Reads `text_key` (text) or `b64_key` (base64) of a field into `out`, counting them in `seen`;
// returns why not, or "" (also for another key).
std::string text_or_base64(const simdjson::dom::key_value_pair& field, const char* text_key,
                           const char* b64_key, const char* what, int& seen, std::string& out) {
  std::string_view v;
  std::string why;
  if (field.key == text_key) {
    why = string_field(field.value, fmt::format("\"{}\" ({})", text_key, what).c_str(), v);
    out.assign(v);
    ++seen;
  } else if (field.key == b64_key) {
    why = string_field(field.value, fmt::format("\"{}\" ({} in base64)", b64_key, what).c_str(), v);
    if (why.empty() && !base64::decode(v, out))
      why = fmt::format("\"{}\" ({} in base64) is not standard padded base64", b64_key, what);
    ++seen;
  }
  return why;
}

// Reads "h", the record's attributes: an array of {"k"|"kb": key, "v"|"vb": value}.
std::string read_attributes(simdjson::dom::element v, stream_record& out) {
  simdjson::dom::array items;
  if (v.get_array().get(items) != simdjson::SUCCESS)
    return "\"h\" (the attributes) is not an array";
  auto attributes = std::make_shared<record_attributes>();
  for (auto item : items) {
    const auto n = attributes->size() + 1;
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS)
      return fmt::format("attribute {} of \"h\" is not an object", n);
    auto& [key, value] = attributes->emplace_back();
    int keys = 0;
    int values = 0;
    for (auto field : obj) {
      auto why = text_or_base64(field, "k", "kb", "its key", keys, key);
      if (why.empty())
        why = text_or_base64(field, "v", "vb", "its value", values, value);
      if (!why.empty())
        return fmt::format("attribute {} of \"h\": {}", n, why);
    }
    if (keys != 1 || values != 1)
      return fmt::format("attribute {} of \"h\" needs exactly one of \"k\" and \"kb\" (its key) "
                         "and one of \"v\" and \"vb\" (its value)",
                         n);
  }
  if (!attributes->empty())
    out.attributes = std::move(attributes);
  return {};
}

// Reads the fields of a record object into `out`; returns why it is not a record, or "".
std::string read_record(simdjson::dom::object obj, stream_record& out) {
  int key_fields = 0;
  int data_fields = 0;
  out.arrival_ms.reset();
  out.attributes.reset();
  for (auto field : obj) {
    std::string_view v;
    std::string why;
    if (field.key == "k") {
      why = string_field(field.value, "\"k\" (the partition key)", v);
      out.partition_key.assign(v);
      ++key_fields;
    } else if (field.key == "kb") {
      why = string_field(field.value, "\"kb\" (the partition key in base64)", v);
      if (why.empty() && !base64::decode(v, out.partition_key))
        why = "\"kb\" (the partition key in base64) is not standard padded base64";
      ++key_fields;
    } else if (field.key == "d") {
      why = string_field(field.value, "\"d\" (the data)", v);
      out.data.assign(v);
      ++data_fields;
    } else if (field.key == "b") {
      why = string_field(field.value, "\"b\" (the data in base64)", v);
      if (why.empty() && !base64::decode(v, out.data))
        why = "\"b\" (the data in base64) is not standard padded base64";
      ++data_fields;
    } else if (field.key == "t") {
      std::int64_t t = 0;
      if (field.value.get_int64().get(t) != simdjson::SUCCESS)
        why = "\"t\" (the arrival time) is not an integer";
      out.arrival_ms = t;
    } else if (field.key == "h") {
      why = read_attributes(field.value, out);
    } // other fields are validated by the parser and skipped
    if (!why.empty())
      return why;
  }
  if (key_fields == 0)
    return "no \"k\" (partition key)";
  if (key_fields > 1)
    return "more than one of \"k\" and \"kb\" (partition key): a record has exactly one";
  if (data_fields == 0)
    return "no \"d\" or \"b\" (data)";
  if (data_fields > 1)
    return "more than one of \"d\" and \"b\" (data): a record has exactly one";
  return {};
}

// Lines longer than this do not leave their buffers behind in the thread's parser.
constexpr std::size_t keep_parser_bytes = std::size_t{1} << 20;

} // namespace

status parse_line(std::string_view line, stream_record& out) {
  // The DOM parser validates the whole document (syntax, UTF-8, numbers of unknown fields, nothing
  // after it). It needs readable padding after the text; lines are short, so copy into a buffer.
  thread_local simdjson::dom::parser parser;
  thread_local std::string buf;
  buf.assign(line.data(), line.size());
  buf.append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  std::string why;
  if (auto err = parser.parse(buf.data(), line.size(), false).get(doc))
    why = reason_of(err, line);
  else if (doc.get_object().get(obj) != simdjson::SUCCESS)
    why = "not a JSON object";
  else
    why = read_record(obj, out);
  if (line.size() > keep_parser_bytes) { // a parser keeps the capacity of its longest document
    parser = simdjson::dom::parser{};
    std::string{}.swap(buf);
  }
  if (why.empty())
    return {};
  return fail(std::move(why));
}

} // namespace shardflow
