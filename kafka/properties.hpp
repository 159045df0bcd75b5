// kafka/properties.hpp - librdkafka properties (`-X key=value`) applied to a client configuration.
//
// Each property goes through librdkafka's own check (`RdKafka::Conf::set`), so a misspelled key or
// a bad value is refused with librdkafka's reason and the property's name. The properties that
// shardflow's guarantees rest on (manual commits, idempotent production) are set by the source and
// the flusher after the user's and cannot be switched off from here.
//
// `kafka_event_log` routes a client's librdkafka log lines and errors into a shardflow `log_sink`
// (instead of librdkafka's raw `%3|...|rdkafka` lines on standard error). librdkafka calls it from
// its own threads (log lines) and from `poll` (errors): the sink must be thread-safe, as every
// log_sink is, and the object must outlive the client it is set on (`event_cb`).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <librdkafka/rdkafkacpp.h>

#include <shardflow/core/log.hpp>

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

/// Returns the level of a librdkafka log line of syslog `severity`: 0-3 error, 4 warning, 5-6 info,
/// 7 (and anything else) debug.
log_level kafka_log_level(int severity) noexcept;

/// Writes the librdkafka log line `e` (an EVENT_LOG event) to `log` at its level, as
/// "WHAT: librdkafka FAC: TEXT" (`what` names the client: "kafka put", "kafka consumer").
void log_kafka_line(const RdKafka::Event& e, const log_sink& log, std::string_view what);

/// The events of a client that has no other use for them: log lines as `log_kafka_line`, errors as
/// warnings ("WHAT: ERROR: TEXT"; a transport error, which librdkafka also logs as a FAIL line, at
/// debug); the last error is kept for the client's own failure message.
class kafka_event_log final : public RdKafka::EventCb {
public:
  /// Logs to `log` (empty: `stderr_log("shardflow")`) naming the client `what`.
  kafka_event_log(std::string what, log_sink log);

  void event_cb(RdKafka::Event& e) override;

  /// Returns the last error librdkafka reported, "ERROR: TEXT", or "" when none.
  std::string last_error() const;

private:
  std::string what_;
  log_sink log_;
  mutable std::mutex mtx_;
  std::string last_error_; // guarded by mtx_
};

} // namespace shardflow
