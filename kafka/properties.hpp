// kafka/properties.hpp - librdkafka properties (`-X key=value`) applied to a client configuration.
//
// Each property goes through librdkafka's own check (`RdKafka::Conf::set`), so a misspelled key or
// a bad value is refused with librdkafka's reason and the property's name. The properties that
// shardflow's guarantees rest on (manual commits, idempotent production) are set by the source and
// the flusher after the user's and cannot be switched off from here.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <librdkafka/rdkafkacpp.h>

namespace shardflow {

/// librdkafka properties by name, e.g. {"session.timeout.ms", "6000"}.
using kafka_properties = std::map<std::string, std::string>;

/// Parses "key=value" (kcat's `-X`) into `out`.
/// @throws shardflow::error (errc::bad_input) naming the text when it has no '=' or no key.
void parse_kafka_property(std::string_view text, kafka_properties& out);

/// Returns a global configuration holding `props`; `what` names the client in errors ("consumer").
/// @throws shardflow::error (errc::bad_input) naming the property and librdkafka's reason.
std::unique_ptr<RdKafka::Conf> make_kafka_conf(const kafka_properties& props,
                                               std::string_view what);

/// Sets one property on `conf`. @throws shardflow::error (errc::bad_input) as `make_kafka_conf`.
void set_kafka_property(RdKafka::Conf& conf, const std::string& key, const std::string& value,
                        std::string_view what);

} // namespace shardflow
