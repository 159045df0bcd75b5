#include "apps/shardflow/partition_key.hpp"

#include <string_view>

#include <fmt/format.h>
#include <simdjson.h>

namespace shardflow::cli {

result<std::string> partition_key_of(const std::string& line, const std::string& field) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line).get(doc) != simdjson::SUCCESS || !doc.is_object())
    return fail("not a JSON object");
  if (field.empty())
    return line;
  simdjson::dom::element v;
  if (doc[field].get(v) != simdjson::SUCCESS)
    return fail(fmt::format("no field \"{}\" for the partition key", field));
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS)
    return std::string{s};
  return simdjson::minify(v);
}

} // namespace shardflow::cli
