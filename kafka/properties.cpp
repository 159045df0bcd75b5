// kafka/properties.cpp - see properties.hpp.
#include <shardflow/kafka/properties.hpp>

#include <utility>

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

log_level kafka_log_level(int severity) noexcept {
  if (severity >= 0 && severity <= 3) // emerg, alert, crit, err
    return log_level::error;
  if (severity == 4)
    return log_level::warning;
  if (severity == 5 || severity == 6) // notice, info
    return log_level::info;
  return log_level::debug;
}

void log_kafka_line(const RdKafka::Event& e, const log_sink& log, std::string_view what) {
  log(kafka_log_level(e.severity()), fmt::format("{}: librdkafka {}: {}", what, e.fac(), e.str()));
}

kafka_event_log::kafka_event_log(std::string what, log_sink log)
  : what_(std::move(what)), log_(log ? std::move(log) : stderr_log("shardflow")) {
  // nop
}

void kafka_event_log::event_cb(RdKafka::Event& e) {
  if (e.type() == RdKafka::Event::EVENT_LOG) {
    log_kafka_line(e, log_, what_);
  } else if (e.type() == RdKafka::Event::EVENT_ERROR) {
    auto text = fmt::format("{}: {}", RdKafka::err2str(e.err()), e.str());
    // A transport error comes with librdkafka's FAIL log line saying the same: debug only.
    log_(e.err() == RdKafka::ERR__TRANSPORT ? log_level::debug : log_level::warning,
         fmt::format("{}: {}", what_, text));
    std::lock_guard<std::mutex> guard{mtx_};
    last_error_ = std::move(text);
  }
}

std::string kafka_event_log::last_error() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return last_error_;
}

} // namespace shardflow
