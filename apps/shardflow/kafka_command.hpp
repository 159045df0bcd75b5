// apps/shardflow/kafka_command.hpp - `shardflow kafka run` and `shardflow kafka put`: Kafka
// partitions as shards under a consumer group, and NDJSON/text lines into a topic.
//
// `kafka run --brokers HOST:PORT[,...] --topic T[,T...] --group G --flusher F` joins the group
// (kafka/consumer_group.hpp): each partition assigned to this member is a shard with the chosen
// flusher, checkpointed as the group's committed offsets (a checkpoint at o commits o + 1, once o
// is durable). It takes run's job options (batch size, intervals, restarts, --stop-timeout,
// --threads) and librdkafka properties as `-X key=value` (kcat's convention; for the consumer and
// a kafka: flusher alike). It runs until SIGINT or SIGTERM: every shard flushes, checkpoints and
// commits, then the consumer leaves the group (exit 0); a second signal or a stop longer than
// --stop-timeout ends it at once (exit 130; a rerun resumes at the committed offsets). A fatal
// consumer error, a shard that gives up, or a cluster out of reach for longer than
// --connect-timeout (default 30 s: never reached since the start, or every broker down; a broker
// restart shorter than that is ridden out) ends the job with exit 1 and the reason.
//
// `kafka put --brokers ... --topic T [--key FIELD] [FILE...]` produces each line of the files (or
// of stdin) as one record, with acks=all and idempotence on; `--key FIELD` keys NDJSON lines by that
// top-level field as `shardflow put` does. Exit 0 once every record is acknowledged, 1 when a
// delivery failed or did not happen within --connect-timeout (default 30 s, librdkafka's
// message.timeout.ms unless -X sets that: "0 of N delivered to BROKERS (topic T) within 30 s: ..."
// with librdkafka's last error), 3 for a line without the key.
//
// librdkafka's own log lines (the consumer's, a kafka: flusher's producer's, put's producer's) go
// through the command's log (cli_log.hpp: the --log-level and --log-format lines) at their mapped
// level (kafka/properties.hpp's kafka_log_level), never as raw `%3|...|rdkafka` lines.
//
// The parts are callable in process (`kafka_run`, `kafka_put_lines`) so that tests drive them
// against librdkafka's mock cluster, which lives inside one process.
#pragma once

#include <functional>
#include <istream>
#include <string>
#include <vector>

#include "apps/shardflow/flusher_choice.hpp"
#include "apps/shardflow/run_command.hpp"

namespace CLI {
class App;
} // namespace CLI

namespace shardflow::cli {

/// The options of `kafka run`.
struct kafka_run_config : job_options {
  std::string brokers;
  std::string topics; // T[,T...]
  std::string group;
  std::string flusher;
  std::vector<std::string> properties; // key=value
  std::string assignor = "range";
  std::string connect_timeout = "30s"; // 0: retry an unreachable cluster for ever
  std::string json; // empty: none; "-": stdout
  flusher_options flushing; // rolling, the postgres table and columns
};

/// The options of `kafka put`.
struct kafka_put_config {
  std::string brokers;
  std::string topic;
  std::string key;
  std::vector<std::string> files;
  std::vector<std::string> properties;
  std::string connect_timeout = "30s"; // message.timeout.ms unless -X sets it; 0: for ever
};

/// Runs `kafka run` until `stop()` turns true (checked every 100 ms; the command passes the
/// signal flag) or the job fails; returns the exit code.
/// @throws shardflow::error or CLI::ValidationError (a usage error) as `guarded` maps them.
int kafka_run(const kafka_run_config& cfg, const std::function<bool()>& stop);

/// Produces every line of `in` (named `name` in errors) to the topic; returns how many.
/// @throws shardflow::error: errc::bad_input for a line without the key, errc::io_failed for a
///         failed delivery.
std::size_t kafka_put_lines(const kafka_put_config& cfg, std::istream& in, const std::string& name);

/// Registers `kafka run` and `kafka put` on `app`.
void add_kafka_commands(CLI::App& app, int& exit_code);

} // namespace shardflow::cli
