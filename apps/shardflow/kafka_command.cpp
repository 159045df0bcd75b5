// apps/shardflow/kafka_command.cpp - see kafka_command.hpp: the plan (options checked), the job (an
// actor system, a runtime, one consumer-group member), the verdict; then `kafka put`.
#include "apps/shardflow/kafka_command.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"
#include "apps/shardflow/flusher_choice.hpp"
#include "apps/shardflow/guarded.hpp"
#include "apps/shardflow/options.hpp"
#include "apps/shardflow/partition_key.hpp"
#include "apps/shardflow/signals.hpp"
#include "apps/shardflow/stream_commands.hpp"
#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/kafka/consumer_group.hpp>
#include <shardflow/kafka/properties.hpp>

namespace shardflow::cli {

namespace {

// -- the plan --------------------------------------------------------------------------------------

// Checks one -X value as it is parsed (from the command line, the environment or a config file,
// whose file and line the message then names): KEY=VALUE, and a key and value librdkafka takes.
CLI::Validator kafka_property() {
  return CLI::Validator(
    [](std::string& text) {
      try {
        kafka_properties one;
        parse_kafka_property(text, one);
        make_kafka_conf(one, "Kafka client");
        return std::string{};
      } catch (const error& e) {
        return std::string{e.what()};
      }
    },
    "KEY=VALUE");
}

// The -X properties, each checked by librdkafka now (a bad one is a usage error).
kafka_properties properties_of(const std::vector<std::string>& texts) {
  kafka_properties out;
  try {
    for (const auto& t : texts)
      parse_kafka_property(t, out);
    make_kafka_conf(out, "Kafka client");
  } catch (const error& e) {
    usage(fmt::format("-X: {}", e.what()));
  }
  return out;
}

// Refuses a --brokers value that names no broker ('' or ','): librdkafka would take it and then
// wait for --connect-timeout without a word about why.
CLI::Validator some_broker() {
  return CLI::Validator(
    [](std::string& text) {
      return text.find_first_not_of(", ") == std::string::npos
               ? std::string{"name at least one broker (HOST:PORT or HOST1:PORT,HOST2:PORT)"}
               : std::string{};
    },
    "HOST:PORT[,...]");
}

std::vector<std::string> topics_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in{text};
  for (std::string t; std::getline(in, t, ',');)
    if (!t.empty())
      out.push_back(t);
  if (out.empty())
    usage("--topic: name at least one topic (T or T1,T2)");
  return out;
}

// The shard template: run's batches, intervals and restarts.
shard_group_config shards_of(const kafka_run_config& cfg, flusher_factory flushers) {
  auto g = plan_job_shards(cfg);
  g.shard.make_flusher = std::move(flushers);
  return g;
}

kafka_source_config source_of(const kafka_run_config& cfg, kafka_properties props) {
  kafka_source_config k;
  k.brokers = cfg.brokers;
  k.topics = topics_of(cfg.topics);
  k.group = cfg.group;
  k.properties = std::move(props);
  k.assignor = cfg.assignor;
  k.connect_timeout = duration_option("--connect-timeout", cfg.connect_timeout);
  k.log = cli_log();
  return k;
}

// -- the job ---------------------------------------------------------------------------------------

// The first shard that gave up, with its id, or "".
std::string gave_up(const runtime& rt) {
  for (const auto& id : rt.shards())
    if (auto m = rt.meters(id); m && m->outcome.load() == shard_outcome::gave_up)
      return id;
  return {};
}

std::uint64_t records_of(const runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& id : rt.shards())
    if (auto m = rt.meters(id))
      n += m->records_received.load();
  return n;
}

// The committed offsets of the partitions this member last held, as JSON members.
std::string committed_json(const kafka_consumer_group& g, const runtime& rt) {
  std::string out;
  for (const auto& id : rt.shards()) {
    auto c = g.store()->committed(id);
    auto m = rt.meters(id);
    if (!m || m->acked_position.load() == shard_meters::no_position)
      continue;
    out += fmt::format("{}\"{}\":{}", out.empty() ? "" : ",", id,
                       c ? *c : static_cast<std::int64_t>(m->acked_position.load() + 1));
  }
  return out;
}

int verdict(const kafka_run_config& cfg, const std::string& failure, const std::string& gave,
            std::uint64_t records, const std::string& committed) {
  int code = exit_ok;
  std::string problem;
  if (!failure.empty())
    problem = failure;
  else if (!gave.empty())
    problem = fmt::format("shard {} gave up after its restarts; fix the cause and rerun (it "
                          "resumes at its committed offset)",
                          gave);
  if (!problem.empty()) {
    say(log_level::error, "failed: {}", problem);
    code = exit_failed;
  }
  auto readable = committed; // "events-0":499,... -> events-0=499, ...
  readable.erase(std::remove(readable.begin(), readable.end(), '"'), readable.end());
  std::replace(readable.begin(), readable.end(), ':', '=');
  say(log_level::info, "kafka run: {} received; committed offsets: {}", plural(records, "record"),
      readable.empty() ? "none" : readable);
  if (cfg.json.empty())
    return code;
  auto text = fmt::format("{{\"records\":{},\"committed\":{{{}}},\"exit_code\":{}}}\n", records,
                          committed, code);
  auto* out = cfg.json == "-" ? stdout : std::fopen(cfg.json.c_str(), "w");
  if (out == nullptr || std::fputs(text.c_str(), out) < 0 || std::fflush(out) != 0) {
    say(log_level::error, "failed: cannot write the JSON summary to {}", cfg.json);
    code = code == exit_ok ? exit_failed : code;
  }
  if (out != nullptr && out != stdout)
    std::fclose(out);
  return code;
}

} // namespace

int kafka_run(const kafka_run_config& cfg, const std::function<bool()>& stop) {
  auto props = properties_of(cfg.properties);
  auto spec = parse_flusher(cfg.flusher);
  if (!spec)
    usage("--flusher: " + spec.error());
  if (cfg.json == "-" && spec->name == "stdout")
    usage("--json -: the records are on stdout (--flusher stdout), so the JSON summary cannot be; "
          "write it to a file with --json FILE");
  flusher_settings fs;
  fs.batch_records = cfg.batch_size;
  fs.kafka_properties = props;
  fs.stream = cfg.group;
  apply_flusher_options(cfg.flushing, fs);
  auto tpl = shards_of(cfg, make_flusher_factory(*spec, fs));
  // After the flusher made its directories: a job must not learn at its end that it cannot write
  // its summary.
  if (!cfg.json.empty() && cfg.json != "-") {
    auto* f = std::fopen(cfg.json.c_str(), "w");
    if (f == nullptr)
      throw error{errc::io_failed, fmt::format("cannot write the JSON summary to {}: {}", cfg.json,
                                               std::strerror(errno))};
    std::fclose(f);
  }
  auto src = source_of(cfg, std::move(props));
  stop_deadline deadline{duration_option("--stop-timeout", cfg.stop_timeout), cfg.stop_timeout,
                         "resumes at the committed offsets"};
  auto sys_cfg = system_config_of(cfg);
  caf::actor_system sys{*sys_cfg};
  runtime_config rc;
  rc.restart_groups = false; // a shard that gave up ends the job (see verdict)
  rc.log = cli_log();
  auto rt = runtime::start(sys, rc);
  if (!rt)
    throw error{errc::start_failed,
                fmt::format("the runtime cannot start: {}", to_string(rt.error()))};
  auto group = kafka_consumer_group::start(**rt, std::move(src), std::move(tpl));
  std::string gave;
  while (!stop() && !group->finished() && (gave = gave_up(**rt)).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  say(log_level::info, "stopping: every shard flushes, checkpoints and commits, then the consumer "
                       "leaves the group");
  deadline.arm(); // the stop also follows a give-up or the group's end, not only a signal
  group->stop();
  auto code = verdict(cfg, group->failure(), gave, records_of(**rt), committed_json(*group, **rt));
  (*rt)->shutdown();
  return code;
}

// -- kafka put -------------------------------------------------------------------------------------

namespace {

struct put_reports final : RdKafka::DeliveryReportCb {
  std::size_t delivered = 0;
  std::string failure;

  void dr_cb(RdKafka::Message& m) override {
    if (m.err() == RdKafka::ERR_NO_ERROR)
      ++delivered;
    else if (failure.empty())
      failure = m.errstr();
  }
};

void produce_line(RdKafka::Producer& p, const std::string& topic, const std::string& line,
                  const std::string& key) {
  for (int attempt = 0;; ++attempt) {
    auto err = p.produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                         const_cast<char*>(line.data()), line.size(),
                         key.empty() ? nullptr : key.data(), key.size(), 0, nullptr);
    if (err == RdKafka::ERR_NO_ERROR)
      return;
    if (err != RdKafka::ERR__QUEUE_FULL || attempt >= 600)
      throw error{errc::io_failed,
                  fmt::format("producing to {} failed: {}", topic, RdKafka::err2str(err))};
    p.poll(100);
  }
}

} // namespace

std::size_t kafka_put_lines(const kafka_put_config& cfg, std::istream& in,
                            const std::string& name) {
  auto props = properties_of(cfg.properties);
  const auto bound = duration_option("--connect-timeout", cfg.connect_timeout);
  auto conf = make_kafka_conf(props, "producer");
  set_kafka_property(*conf, "bootstrap.servers", cfg.brokers, "producer");
  set_kafka_property(*conf, "acks", "all", "producer");
  set_kafka_property(*conf, "enable.idempotence", "true", "producer");
  // The delivery bound: -X message.timeout.ms (or its alias) if given, else --connect-timeout.
  if (props.count("message.timeout.ms") == 0 && props.count("delivery.timeout.ms") == 0)
    set_kafka_property(*conf, "message.timeout.ms", std::to_string(bound.count()),
                       "producer (--connect-timeout)");
  std::string timeout_ms;
  conf->get("message.timeout.ms", timeout_ms);
  const auto within = std::chrono::milliseconds{std::stoll(timeout_ms)};
  put_reports reports;
  kafka_event_log events{"kafka producer", cli_log()}; // outlives the producer
  std::string why;
  conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&reports), why);
  conf->set("event_cb", static_cast<RdKafka::EventCb*>(&events), why);
  std::unique_ptr<RdKafka::Producer> p{RdKafka::Producer::create(conf.get(), why)};
  if (!p)
    throw error{errc::io_failed, fmt::format("kafka producer cannot be made: {}", why)};
  // Each record is reported by `within` (librdkafka expires it then); a margin for the reports.
  const auto settle = [&] {
    return p->flush(within.count() == 0 ? -1 : static_cast<int>(within.count() + 10'000));
  };
  std::size_t n = 0;
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    std::string key;
    if (!cfg.key.empty()) {
      auto k = partition_key_of(line, cfg.key);
      if (!k) {
        // The lines before it are delivered (or have failed) before the command says how many.
        settle();
        throw error{errc::bad_input,
                    fmt::format("{}:{}: {} (of the {} before it, {} delivered{})", name, line_no,
                                k.error(), plural(n, "line"), reports.delivered,
                                reports.failure.empty() ? std::string{}
                                                        : "; the others not: " + reports.failure)};
      }
      key = std::move(*k);
    }
    produce_line(*p, cfg.topic, line, key);
    ++n;
    p->poll(0);
  }
  auto err = settle();
  if (!reports.failure.empty() || err != RdKafka::ERR_NO_ERROR || reports.delivered != n) {
    auto why_not = reports.failure.empty() ? RdKafka::err2str(err) : reports.failure;
    if (auto last = events.last_error(); !last.empty())
      why_not += "; librdkafka's last error: " + last;
    throw error{errc::io_failed,
                fmt::format("{}: {} of {} delivered to {} (topic {}){}: {}", name,
                            reports.delivered, n, cfg.brokers, cfg.topic,
                            within.count() == 0
                              ? std::string{}
                              : fmt::format(" within {:g} s",
                                            std::chrono::duration<double>(within).count()),
                            why_not)};
  }
  return n;
}

namespace {

int kafka_put(const kafka_put_config& cfg) {
  std::size_t n = 0;
  if (cfg.files.empty()) {
    check_input("-");
    n = kafka_put_lines(cfg, std::cin, "stdin");
  } else {
    for (const auto& f : cfg.files)
      check_input(f); // every input before the first record is produced
    for (const auto& f : cfg.files) {
      std::ifstream in{f};
      if (!in)
        throw error{errc::io_failed, fmt::format("cannot read {}: {}", f, std::strerror(errno))};
      n += kafka_put_lines(cfg, in, f);
    }
  }
  say(log_level::info, "put {} to {}", plural(n, "record"), cfg.topic);
  return exit_ok;
}

void add_run(CLI::App* kafka, int& exit_code) {
  auto cfg = std::make_shared<kafka_run_config>();
  auto* cmd = kafka->add_subcommand(
    "run", "Consume topics as a consumer group: each assigned partition a supervised shard, "
           "offsets committed once durable");
  cmd->add_option("--brokers", cfg->brokers, "bootstrap brokers HOST:PORT[,...]")
    ->required()
    ->check(some_broker());
  cmd->add_option("--topic", cfg->topics, "the topics, T[,T...]")->required();
  cmd->add_option("--group", cfg->group, "the consumer group id")->required();
  cmd
    ->add_option("--flusher", cfg->flusher,
                 "null | stdout | file:DIR | postgres:CONNINFO | kafka:BROKERS/TOPIC")
    ->required();
  cmd
    ->add_option(
      "-X,--property", cfg->properties,
      "a librdkafka property key=value (repeatable; in the config file: property = [...])")
    ->type_name("KEY=VALUE")
    ->check(kafka_property())
    ->allow_extra_args(false); // one value each: -X a=1 FILE leaves FILE alone
  cmd->add_option("--assignor", cfg->assignor, "an eager assignor: range or roundrobin")
    ->check(CLI::IsMember({"range", "roundrobin"}))
    ->capture_default_str();
  add_duration(cmd, "--connect-timeout", cfg->connect_timeout,
               "how long the cluster may be out of reach (never reached since the start, every "
               "broker down, or silent since a commit went unanswered) before the job fails "
               "with exit 1; 0: wait for ever")
    ->capture_default_str();
  add_json_summary(cmd, cfg->json,
                   "also write the summary as JSON to FILE (- or no FILE: stdout, unless the "
                   "flusher is stdout)");
  add_flusher_options(cmd, &cfg->flushing);
  add_job_options(cmd, cfg.get());
  cmd->callback([cfg, &exit_code] {
    exit_code = guarded("kafka run", [&] {
      stop_on_signals("kafka run");
      return kafka_run(*cfg, [] { return stop_requested().load(); });
    });
  });
}

void add_put(CLI::App* kafka, int& exit_code) {
  auto cfg = std::make_shared<kafka_put_config>();
  auto* cmd = kafka->add_subcommand(
    "put", "Produce each line of FILEs (or stdin) as a record, acks=all, idempotent");
  cmd->add_option("--brokers", cfg->brokers, "bootstrap brokers HOST:PORT[,...]")
    ->required()
    ->check(some_broker());
  cmd->add_option("--topic", cfg->topic, "the topic")->required();
  cmd->add_option("--key", cfg->key, "key NDJSON lines by this top-level field");
  cmd
    ->add_option(
      "-X,--property", cfg->properties,
      "a librdkafka property key=value (repeatable; in the config file: property = [...])")
    ->type_name("KEY=VALUE")
    ->check(kafka_property())
    ->allow_extra_args(false); // one value each: -X a=1 FILE leaves FILE alone
  add_duration(cmd, "--connect-timeout", cfg->connect_timeout,
               "how long a record may wait for its delivery (the cluster out of reach, every "
               "broker down) before put fails with exit 1; librdkafka's message.timeout.ms, "
               "unless -X sets that; 0: wait for ever")
    ->capture_default_str();
  cmd->add_option("files", cfg->files, "input files (default: stdin)");
  cmd->callback(
    [cfg, &exit_code] { exit_code = guarded("kafka put", [&] { return kafka_put(*cfg); }); });
}

} // namespace

void add_kafka_commands(CLI::App& app, int& exit_code) {
  auto* kafka = app.add_subcommand("kafka", "Kafka topics: consume as a group, produce lines");
  kafka->require_subcommand(1);
  add_run(kafka, exit_code);
  add_put(kafka, exit_code);
}

} // namespace shardflow::cli
