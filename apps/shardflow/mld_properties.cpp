#include "apps/shardflow/mld_properties.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "apps/shardflow/options.hpp"

namespace shardflow::cli {

namespace {

bool all_digits(const std::string& s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in{text};
  while (std::getline(in, part, sep))
    out.push_back(part);
  return out;
}

// arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME; returns the region.
result<std::string> stream_arn_region(const std::string& arn) {
  const auto parts = split(arn, ':');
  if (parts.size() != 6 || parts[0] != "arn" || parts[1].empty() || parts[2] != "kinesis"
      || parts[3].empty() || !all_digits(parts[4]) || parts[5].rfind("stream/", 0) != 0
      || parts[5].size() == 7)
    return fail(fmt::format("--stream-arn: \"{}\" is not a Kinesis stream's ARN "
                            "(arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)",
                            arn));
  return parts[3];
}

// Whether `exe` runs `shardflow mld` (the stdio worker) without naming a flusher.
bool mld_without_flusher(const std::string& exe) {
  const auto words = split(exe, ' ');
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    const auto& w = words[i];
    const bool shardflow = w == "shardflow"
                           || (w.size() > 10 && w.compare(w.size() - 10, 10, "/shardflow") == 0);
    if (!shardflow || words[i + 1] != "mld")
      continue;
    for (std::size_t j = i + 2; j < words.size(); ++j)
      if (words[j] == "--flusher" || words[j].rfind("--flusher=", 0) == 0)
        return false;
    return true;
  }
  return false;
}

struct generation {
  const char* run;         // how to start the daemon
  const char* credentials; // AWSCredentialsProvider's value
  const char* timestamp;   // the AT_TIMESTAMP key
  const char* cbor;        // the JVM switch that turns CBOR off (emulators)
};

generation generation_of(int kcl) {
  if (kcl == 1)
    return {"java -Dfile.encoding=UTF-8 -cp '<KCL 1.x jars>/*' "
            "com.amazonaws.services.kinesis.multilang.MultiLangDaemon THIS_FILE",
            "DefaultAWSCredentialsProviderChain", "timestampAtInitialPositionInStream",
            "-Dcom.amazonaws.sdk.disableCbor=true"};
  return {kcl == 2 ? "java -Dfile.encoding=UTF-8 -cp '<KCL 2.x jars>/*' "
                     "software.amazon.kinesis.multilang.MultiLangDaemon "
                     "--properties-file THIS_FILE"
                   : "java -Dfile.encoding=UTF-8 -cp '<KCL 3.x jars>/*' "
                     "software.amazon.kinesis.multilang.MultiLangDaemon "
                     "--properties-file THIS_FILE",
          "DefaultCredentialsProvider", "initialPositionInStreamExtended",
          "-Daws.cborEnabled=false"};
}

// The keys that say where a shard without a checkpoint starts.
result<std::string> position_lines(const mld_properties_config& cfg, const generation& g) {
  const bool at = cfg.initial_position == "AT_TIMESTAMP";
  if (!at && cfg.initial_position != "TRIM_HORIZON" && cfg.initial_position != "LATEST")
    return fail(fmt::format("--initial-position: \"{}\" is none of TRIM_HORIZON, LATEST, "
                            "AT_TIMESTAMP",
                            cfg.initial_position));
  if (at && cfg.initial_position_timestamp.empty())
    return fail("--initial-position AT_TIMESTAMP needs --initial-position-timestamp (epoch seconds "
                "or YYYY-MM-DDTHH:MM:SSZ)");
  if (!at && !cfg.initial_position_timestamp.empty())
    return fail("--initial-position-timestamp needs --initial-position AT_TIMESTAMP");
  if (!at)
    return fmt::format("# Where a shard with no checkpoint starts: TRIM_HORIZON, LATEST or "
                       "AT_TIMESTAMP.\ninitialPositionInStream = {}\n",
                       cfg.initial_position);
  auto secs = parse_epoch_seconds("--initial-position-timestamp", cfg.initial_position_timestamp);
  if (!secs)
    return fail(secs.error());
  return fmt::format(
    "# A shard with no checkpoint starts at its first record at or after {} (epoch seconds;\n"
    "# this key alone selects AT_TIMESTAMP: initialPositionInStream = AT_TIMESTAMP is refused).\n"
    "{} = {}\n",
    cfg.initial_position_timestamp, g.timestamp, *secs);
}

// executableName and, in server mode, how to start the server.
result<std::string> executable_lines(const mld_properties_config& cfg) {
  const bool server = cfg.mode == "server";
  if (!server && cfg.mode != "stdio")
    return fail(fmt::format("--mode: \"{}\" is neither stdio nor server", cfg.mode));
  const auto exe = !cfg.executable.empty() ? cfg.executable
                   : server               ? "shardflow mld-connect " + cfg.listen
                                          : "shardflow mld --flusher " + cfg.flusher;
  if (mld_without_flusher(exe))
    return fail(fmt::format("--executable \"{}\": `shardflow mld` needs --flusher (it refuses to "
                            "start without one)",
                            exe));
  if (cfg.executable.empty()) {
    auto spec = parse_flusher(cfg.flusher);
    if (!spec)
      return fail("--flusher: " + spec.error());
    if (!server && spec->name == "stdout")
      return fail("--flusher stdout: `shardflow mld` speaks the protocol on stdout (use file:DIR, "
                  "or --mode server)");
  }
  if (cfg.executable.empty() && !server && cfg.flusher.find(' ') != std::string::npos)
    return fail(fmt::format("--flusher \"{}\": the daemon splits executableName on spaces, so the "
                            "flusher cannot have one (give the whole --executable instead)",
                            cfg.flusher));
  std::string out;
  if (server)
    out += fmt::format("# Server mode: start `shardflow mld-server --listen {} --flusher {}` "
                       "first; the daemon\n# then runs one connector per leased shard.\n",
                       cfg.listen, cfg.flusher);
  out += "# The child the daemon starts for each leased shard: split on spaces, found on PATH, no "
         "shell.\n";
  out += fmt::format("executableName = {}\n", exe);
  return out;
}

// The stream (by name or ARN), the application, the region and the credentials.
result<std::string> stream_lines(const mld_properties_config& cfg, const generation& g) {
  std::string region = cfg.region;
  std::string stream;
  if (!cfg.stream_arn.empty()) {
    if (cfg.kcl == 1)
      return fail("--stream-arn: KCL 1.x has no streamArn (KCL >= 2.5.1 reads it): use --stream "
                  "NAME, or --kcl 2 or 3");
    auto arn_region = stream_arn_region(cfg.stream_arn);
    if (!arn_region)
      return fail(arn_region.error());
    if (region.empty())
      region = *arn_region;
    else if (region != *arn_region)
      return fail(fmt::format("--region {}: the stream's ARN is in {}", region, *arn_region));
    stream = fmt::format("# The stream's name comes from its ARN.\nstreamArn = {}\n",
                         cfg.stream_arn);
  } else {
    if (cfg.stream.empty())
      return fail("--stream: the stream needs a name (or give --stream-arn)");
    stream = fmt::format("streamName = {}\n", cfg.stream);
  }
  if (region.empty())
    region = "us-east-1";
  return fmt::format("{}# The lease table in DynamoDB is named after the application.\n"
                     "applicationName = {}\nregionName = {}\n"
                     "# The credentials of the daemon's clients (Kinesis, DynamoDB, CloudWatch).\n"
                     "AWSCredentialsProvider = {}\n",
                     stream, cfg.app, region, g.credentials);
}

// CloudWatch and, for emulators, the endpoints.
result<std::string> service_lines(const mld_properties_config& cfg, const generation& g) {
  const auto& m = cfg.metrics_level;
  if (m != "NONE" && m != "SUMMARY" && m != "DETAILED")
    return fail(fmt::format("--metrics-level: \"{}\" is none of NONE, SUMMARY, DETAILED", m));
  auto out = fmt::format("# The daemon's own CloudWatch metrics: NONE publishes nothing; "
                         "SUMMARY or DETAILED need\n# cloudwatch:PutMetricData.\n"
                         "metricsLevel = {}\n",
                         m);
  if (cfg.kinesis_endpoint.empty() && cfg.dynamodb_endpoint.empty())
    return out;
  out += fmt::format("\n# Emulators (there is no CloudWatch endpoint key: keep metricsLevel = "
                     "NONE). Start the JVM with\n# {} (the emulators' CBOR differs from AWS's).\n",
                     g.cbor);
  if (!cfg.kinesis_endpoint.empty())
    out += fmt::format("kinesisEndpoint = {}\n", cfg.kinesis_endpoint);
  if (!cfg.dynamodb_endpoint.empty())
    out += fmt::format("dynamoDBEndpoint = {}\n", cfg.dynamodb_endpoint);
  return out;
}

} // namespace

result<long long> parse_epoch_seconds(const std::string& option, const std::string& text) {
  const auto bad = [&] {
    return fail(fmt::format("{}: \"{}\" is neither epoch seconds (1796169600) nor a UTC time "
                            "(2026-12-01T00:00:00Z)",
                            option, text));
  };
  if (all_digits(text)) {
    if (text.size() > 12) // past year 33000: milliseconds, most likely
      return bad();
    return std::stoll(text);
  }
  std::tm tm{};
  char z = 0;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &n)
        != 7
      || z != 'Z' || static_cast<std::size_t>(n) != text.size() || text.size() != 20)
    return bad();
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23
      || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
    return bad();
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const int mday = tm.tm_mday;
  const auto secs = timegm(&tm);
  if (tm.tm_mday != mday) // 2026-02-31 normalised into March
    return bad();
  return static_cast<long long>(secs);
}

result<std::string> mld_properties_text(const mld_properties_config& cfg) {
  if (cfg.kcl < 1 || cfg.kcl > 3)
    return fail(fmt::format("--kcl: {} is no daemon generation this writes for (1, 2 or 3)",
                            cfg.kcl));
  const auto g = generation_of(cfg.kcl);
  auto exe = executable_lines(cfg);
  if (!exe)
    return fail(exe.error());
  auto stream = stream_lines(cfg, g);
  if (!stream)
    return fail(stream.error());
  auto position = position_lines(cfg, g);
  if (!position)
    return fail(position.error());
  auto services = service_lines(cfg, g);
  if (!services)
    return fail(services.error());
  return fmt::format(
    R"(# KCL {kcl}.x MultiLangDaemon properties for shardflow (`shardflow mld properties --kcl {kcl}`).
# Run: {run}

{exe}
{stream}
{position}
# Records per processRecords message (each is one line on the worker's stdin).
maxRecords = 10000
idleTimeBetweenReadsInMillis = 1000
# Empty batches let a quiet shard flush and checkpoint on time.
callProcessRecordsEvenForEmptyRecordList = true

# How long SIGTERM waits for the graceful protocol (shutdownRequested); set it, 2.x defaults to 0.
shutdownGraceMillis = 30000
# A worker that does not answer within this many seconds makes the daemon halt (0 or unset: wait).
# Keep it above the slowest flush plus the checkpoint retries.
# timeoutInSeconds = 300

# <= 0: a cached thread pool (recommended); a small fixed pool stalls shards.
maxActiveThreads = -1
processingLanguage = C++/shardflow

{services})",
    fmt::arg("kcl", cfg.kcl), fmt::arg("run", g.run), fmt::arg("exe", *exe),
    fmt::arg("stream", *stream), fmt::arg("position", *position),
    fmt::arg("services", *services));
}

} // namespace shardflow::cli
