// apps/shardflow/mld_properties.hpp - the KCL MultiLangDaemon properties file that `shardflow mld
// properties` prints, per daemon generation (KCL 1.x, 2.x, 3.x).
//
// A pure function of its settings: no I/O, no clock. Each generation gets the keys its configurator
// reads (KCL 1.x: KinesisClientLibConfigurator of amazon-kinesis-client 1.x; 2.x and 3.x: the
// multilang package's KinesisClientLibConfigurator + MultiLangDaemonConfiguration):
//
//   what          KCL 1.x                                   KCL 2.x, 3.x
//   credentials   AWSCredentialsProvider =                  AWSCredentialsProvider =
//                 DefaultAWSCredentialsProviderChain (v1)   DefaultCredentialsProvider (SDK v2)
//   AT_TIMESTAMP  timestampAtInitialPositionInStream = S    initialPositionInStreamExtended = S
//   stream ARN    - (an error)                              streamArn (KCL >= 2.5.1)
//   main class    com.amazonaws.services.kinesis.           software.amazon.kinesis.multilang.
//                 multilang.MultiLangDaemon FILE            MultiLangDaemon --properties-file FILE
//
// (S: epoch seconds.)
//
// With AT_TIMESTAMP no `initialPositionInStream` line is written: every generation's
// `InitialPositionInStreamExtended.newInitialPosition(AT_TIMESTAMP)` throws, so the timestamp key
// alone selects the position. A bad combination (AT_TIMESTAMP without a timestamp, a timestamp
// without AT_TIMESTAMP, --kcl outside 1..3, a streamArn for KCL 1.x, an ARN that is not a Kinesis
// stream's, a `shardflow mld` executable without --flusher) is a failure naming the option.
#pragma once

#include <string>

#include <shardflow/core/result.hpp>

namespace shardflow::cli {

/// What `shardflow mld properties` is asked for; the defaults are the command's.
struct mld_properties_config {
  /// The daemon's generation: 1, 2 or 3.
  int kcl = 3;
  /// "stdio": a `shardflow mld` per leased shard; "server": `shardflow mld-connect` to mld-server.
  std::string mode = "stdio";
  /// server mode: the mld-server's HOST:PORT.
  std::string listen = "127.0.0.1:7400";
  /// The stream's name (ignored when `stream_arn` is set: the daemon takes the name from the ARN).
  std::string stream = "my-stream";
  /// arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME (KCL 2.x/3.x); empty: by name.
  std::string stream_arn;
  /// The application, which names the DynamoDB lease table.
  std::string app = "my-shardflow-app";
  /// The AWS region; empty: the ARN's region, else us-east-1.
  std::string region;
  /// The worker command line verbatim; empty: `shardflow mld --flusher FLUSHER` (stdio) or
  /// `shardflow mld-connect LISTEN` (server).
  std::string executable;
  /// The flusher the default worker (or, in server mode, the mld-server) writes with.
  std::string flusher = "file:/var/lib/shardflow/out";
  /// TRIM_HORIZON, LATEST or AT_TIMESTAMP: where a shard without a checkpoint starts.
  std::string initial_position = "TRIM_HORIZON";
  /// AT_TIMESTAMP's time: epoch seconds, or UTC as YYYY-MM-DDTHH:MM:SSZ.
  std::string initial_position_timestamp;
  /// Emulators: the Kinesis and DynamoDB endpoints (empty: AWS's).
  std::string kinesis_endpoint;
  std::string dynamodb_endpoint;
  /// The daemon's CloudWatch metrics: NONE (publish nothing), SUMMARY or DETAILED.
  std::string metrics_level = "NONE";
};

/// Parses "1796169600" (epoch seconds) or "2026-12-01T00:00:00Z" (UTC) given to `option`.
/// @returns the epoch seconds, or why `text` is neither.
result<long long> parse_epoch_seconds(const std::string& option, const std::string& text);

/// Returns the properties file for `cfg` (see the file comment), or why `cfg` cannot make one.
result<std::string> mld_properties_text(const mld_properties_config& cfg);

} // namespace shardflow::cli
