// kafka/properties.cpp - see properties.hpp.
#include <shardflow/kafka/properties.hpp>

#include <fmt/format.h>

#include <shardflow/core/error.hpp>

namespace shardflow {

void parse_kafka_property(std::string_view text, kafka_properties& out) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw error{errc::bad_input, fmt::format("librdkafka property '{}' is not key=value", text)};
  out[std::string{text.substr(0, eq)}] = std::string{text.substr(eq + 1)};
}

void set_kafka_property(RdKafka::Conf& conf, const std::string& key, const std::string& value,
                        std::string_view what) {
  std::string why;
  if (conf.set(key, value, why) != RdKafka::Conf::CONF_OK)
    throw error{errc::bad_input, fmt::format("librdkafka property {}={} refused for the {}: {}",
                                             key, value, what, why)};
}

std::unique_ptr<RdKafka::Conf> make_kafka_conf(const kafka_properties& props,
                                               std::string_view what) {
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  for (const auto& [key, value] : props)
    set_kafka_property(*conf, key, value, what);
  return conf;
}

} // namespace shardflow
