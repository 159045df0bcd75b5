// kafka/consumer_group.cpp - see consumer_group.hpp.
#include <shardflow/kafka/consumer_group.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/core/error.hpp>

namespace shardflow {

namespace {

// "3 partitions: events-0 (from offset 1249), events-1 (no committed offset: auto.offset.reset),
// ...", at most 16 named.
std::string partitions_text(const std::vector<RdKafka::TopicPartition*>& parts, bool offsets) {
  std::string out = fmt::format("{} partition{}", parts.size(), parts.size() == 1 ? "" : "s");
  std::size_t named = 0;
  for (const auto* tp : parts) {
    if (named == 16) {
      out += fmt::format(", and {} more", parts.size() - named);
      break;
    }
    out += named++ == 0 ? ": " : ", ";
    out += kafka_shard_id(tp->topic(), tp->partition());
    if (offsets)
      out += tp->offset() >= 0 ? fmt::format(" (from offset {})", tp->offset())
                               : std::string{" (no committed offset: auto.offset.reset)"};
  }
  return out;
}

class rebalance final : public RdKafka::RebalanceCb {
public:
  explicit rebalance(kafka_consumer_group* group) : group_(group) {
    // nop
  }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& parts) override {
    try {
      if (err == RdKafka::ERR__ASSIGN_PARTITIONS)
        group_->on_assign(parts);
      else if (err == RdKafka::ERR__REVOKE_PARTITIONS)
        group_->on_revoke(parts);
    } catch (const std::exception& e) { // never through librdkafka's C frames
      group_->on_error(e.what(), true);
    }
    if (err != RdKafka::ERR__ASSIGN_PARTITIONS && err != RdKafka::ERR__REVOKE_PARTITIONS) {
      group_->on_error(fmt::format("rebalance failed: {}", RdKafka::err2str(err)), false);
      consumer->unassign();
    }
  }

private:
  kafka_consumer_group* group_;
};

class events final : public RdKafka::EventCb {
public:
  events(kafka_consumer_group* group, log_sink log) : group_(group), log_(std::move(log)) {
    // nop
  }

  void event_cb(RdKafka::Event& e) override {
    if (e.type() == RdKafka::Event::EVENT_LOG)
      log_kafka_line(e, log_, "kafka consumer"); // from librdkafka's threads: log_ only
    if (e.type() != RdKafka::Event::EVENT_ERROR)
      return;
    auto what = fmt::format("{}: {}", RdKafka::err2str(e.err()), e.str());
    if (e.err() == RdKafka::ERR__ALL_BROKERS_DOWN)
      group_->on_all_brokers_down(what);
    group_->on_error(what, e.fatal());
  }

private:
  kafka_consumer_group* group_;
  log_sink log_;
};

/// Consumer errors that no retry can cure: the job ends.
bool fatal_consumer_error(RdKafka::ErrorCode err) {
  switch (err) {
    case RdKafka::ERR__FATAL:
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
    case RdKafka::ERR__UNKNOWN_TOPIC:
    case RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED:
    case RdKafka::ERR_GROUP_AUTHORIZATION_FAILED:
    case RdKafka::ERR__AUTHENTICATION:
    case RdKafka::ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

std::unique_ptr<RdKafka::Conf> consumer_conf(const kafka_source_config& cfg, std::size_t credit) {
  auto conf = make_kafka_conf(cfg.properties, "consumer");
  const char* what = "consumer";
  for (const auto& [key, value] : kafka_prefetch_properties(cfg, credit))
    set_kafka_property(*conf, key, value, what);
  set_kafka_property(*conf, "bootstrap.servers", cfg.brokers, what);
  set_kafka_property(*conf, "group.id", cfg.group, what);
  if (cfg.properties.count("partition.assignment.strategy") == 0)
    set_kafka_property(*conf, "partition.assignment.strategy", cfg.assignor, what);
  // What at-least-once rests on: offsets are committed by the offset store only.
  set_kafka_property(*conf, "enable.auto.commit", "false", what);
  set_kafka_property(*conf, "enable.auto.offset.store", "false", what);
  return conf;
}

} // namespace

kafka_properties kafka_prefetch_properties(const kafka_source_config& cfg, std::size_t credit) {
  kafka_properties result;
  auto set = [&](const char* key, std::size_t value, const char* alias = nullptr) {
    if (cfg.properties.count(key) == 0 && (alias == nullptr || cfg.properties.count(alias) == 0))
      result[key] = std::to_string(value);
  };
  set("queued.min.messages",
      cfg.prefetch_messages > 0 ? cfg.prefetch_messages : std::max<std::size_t>(credit / 4, 1));
  set("max.partition.fetch.bytes", cfg.partition_fetch_bytes, "fetch.message.max.bytes");
  // librdkafka refuses a fetch.max.bytes below message.max.bytes.
  auto fetch = cfg.fetch_bytes;
  if (auto i = cfg.properties.find("message.max.bytes"); i != cfg.properties.end())
    fetch = std::max<std::size_t>(fetch, std::strtoull(i->second.c_str(), nullptr, 10));
  set("fetch.max.bytes", fetch);
  return result;
}

shard_id kafka_shard_id(const std::string& topic, std::int32_t partition) {
  return fmt::format("{}-{}", topic, partition);
}

kafka_consumer_group::kafka_consumer_group(runtime& rt, kafka_source_config cfg,
                                           shard_group_config shard)
  : rt_(rt), cfg_(std::move(cfg)), shard_(std::move(shard)) {
  if (!cfg_.log)
    cfg_.log = stderr_log("shardflow");
  down_since_ = std::chrono::steady_clock::now(); // not reached yet
  down_reason_ = "no broker has answered yet";
}

std::unique_ptr<kafka_consumer_group>
kafka_consumer_group::start(runtime& rt, kafka_source_config cfg, shard_group_config shard) {
  if (cfg.topics.empty() || cfg.group.empty() || cfg.brokers.empty())
    throw error{errc::bad_input, "kafka source: brokers, topics and group are required"};
  std::unique_ptr<kafka_consumer_group> g{
    new kafka_consumer_group(rt, std::move(cfg), std::move(shard))};
  auto conf = consumer_conf(g->cfg_, g->shard_.shard.credit);
  g->rebalance_cb_ = std::make_unique<rebalance>(g.get());
  g->event_cb_ = std::make_unique<events>(g.get(), g->cfg_.log);
  std::string why;
  if (conf->set("rebalance_cb", g->rebalance_cb_.get(), why) != RdKafka::Conf::CONF_OK
      || conf->set("event_cb", g->event_cb_.get(), why) != RdKafka::Conf::CONF_OK)
    throw error{errc::io_failed, fmt::format("kafka consumer: {}", why)};
  g->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), why));
  if (!g->consumer_)
    throw error{errc::io_failed, fmt::format("kafka consumer cannot be made: {}", why)};
  g->store_ = std::make_shared<kafka_offset_store>(g->consumer_.get(), g->cfg_.commit_timeout);
  g->store_->on_unanswered([group = g.get()](const std::string& why) { // (until detach)
    group->on_unanswered(why);
  });
  g->sink_ = spawn_checkpoint_sink(rt.front().home_system(), g->store_, true);
  if (auto err = g->consumer_->subscribe(g->cfg_.topics); err != RdKafka::ERR_NO_ERROR) {
    g->close_consumer();
    g->store_->detach();
    caf::anon_send_exit(g->sink_, caf::exit_reason::user_shutdown);
    throw error{errc::io_failed,
                fmt::format("kafka consumer cannot subscribe to {}: {}",
                            fmt::join(g->cfg_.topics, ","), RdKafka::err2str(err))};
  }
  g->poller_ = std::thread{[p = g.get()] { p->poll_loop(); }};
  return g;
}

kafka_consumer_group::~kafka_consumer_group() {
  stop();
  if (sink_)
    caf::anon_send_exit(sink_, caf::exit_reason::user_shutdown);
}

void kafka_consumer_group::stop() {
  stopping_ = true;
  if (poller_.joinable())
    poller_.join();
}

std::string kafka_consumer_group::failure() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return failure_;
}

std::vector<shard_id> kafka_consumer_group::assigned() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<shard_id> result;
  for (const auto& kv : parts_)
    result.push_back(kv.first);
  return result;
}

std::vector<shard_id> kafka_consumer_group::paused() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<shard_id> result;
  for (const auto& kv : parts_)
    if (kv.second->paused.load())
      result.push_back(kv.first);
  return result;
}

void kafka_consumer_group::on_error(const std::string& what, bool fatal) {
  if (!fatal) {
    cfg_.log(log_level::warning, fmt::format("kafka consumer of group {}: {}", cfg_.group, what));
    return;
  }
  std::lock_guard<std::mutex> guard{mtx_};
  if (failure_.empty())
    failure_ = fmt::format("kafka consumer of group {}: {}", cfg_.group, what);
  stopping_ = true;
}

void kafka_consumer_group::poll_loop() {
  while (!stopping_.load()) {
    std::unique_ptr<RdKafka::Message> m{
      consumer_->consume(static_cast<int>(cfg_.poll_interval.count()))};
    if (m && m->err() == RdKafka::ERR_NO_ERROR) {
      // Never expected (every partition's queue is its own): a record here would be lost.
      on_error(fmt::format("a record of {}-{} at offset {} reached the consumer's queue",
                           m->topic_name(), m->partition(), m->offset()),
               true);
    } else if (m && m->err() != RdKafka::ERR__TIMED_OUT
               && m->err() != RdKafka::ERR__PARTITION_EOF) {
      auto topic = m->topic_name();
      on_error(topic.empty() ? m->errstr() : fmt::format("topic {}: {}", topic, m->errstr()),
               fatal_consumer_error(m->err()));
    }
    check_backpressure();
    check_reachable();
  }
  if (unreachable_) // the shards' last checkpoints cannot be committed: they stop without them
    store_->abandon("the cluster is out of reach (the group failed on its connect timeout)");
  stop_all();
  close_consumer();
  store_->detach();
  finished_ = true;
}

void kafka_consumer_group::close_consumer() {
  // The consumer leaves the group (its revoke finds no shard left: they were stopped and committed
  // above). Not with close(): librdkafka 2.0.2's waits for ever while a commit that was never
  // answered is retried (its issue #3740; a shard's commit timed out on a cluster gone); the
  // destructor's destroy skips the close, and its wait for librdkafka's threads is bounded by the
  // session timeout.
  std::unique_ptr<RdKafka::Queue> events{RdKafka::Queue::create(consumer_.get())};
  if (std::unique_ptr<RdKafka::Error> e{consumer_->close(events.get())}) {
    cfg_.log(log_level::warning, fmt::format("kafka consumer of group {} cannot close: {}",
                                             cfg_.group, e->str()));
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + cfg_.commit_timeout;
  while (!consumer_->closed() && std::chrono::steady_clock::now() < deadline)
    events->poll(static_cast<int>(cfg_.poll_interval.count())); // serves the rebalance callback
  if (!consumer_->closed())
    cfg_.log(log_level::warning,
             fmt::format("kafka consumer of group {} did not leave the group within {} ms (the "
                         "cluster does not answer): its coordinator drops the member after the "
                         "session timeout",
                         cfg_.group, cfg_.commit_timeout.count()));
}

void kafka_consumer_group::on_all_brokers_down(const std::string& what) {
  if (!down_since_) { // (a silent outage already counting stays one)
    down_since_ = std::chrono::steady_clock::now();
    down_how_ = down_how::brokers_down;
  }
  down_reason_ = what;
}

void kafka_consumer_group::on_unanswered(const std::string& what) {
  std::lock_guard<std::mutex> guard{mtx_};
  unanswered_ = what;
}

void kafka_consumer_group::check_reachable() {
  using clock = std::chrono::steady_clock;
  std::optional<std::string> unanswered;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    unanswered.swap(unanswered_);
  }
  if (unanswered && !down_since_) { // silent since (librdkafka may not have noticed)
    down_since_ = clock::now();
    down_how_ = down_how::silent;
    down_reason_ = std::move(*unanswered);
  }
  if (!down_since_ || cfg_.connect_timeout.count() <= 0 || stopping_.load())
    return;
  auto now = clock::now();
  if (now - last_probe_ < cfg_.probe_interval)
    return;
  last_probe_ = now;
  RdKafka::Metadata* md = nullptr;
  auto err = consumer_->metadata(false, nullptr, &md, static_cast<int>(cfg_.probe_interval.count()));
  delete md;
  if (err == RdKafka::ERR_NO_ERROR) {
    // A silent outage is one only when a probe went unanswered too (a commit may just be slow).
    if (reached_ && (down_how_ == down_how::brokers_down || probe_failed_))
      cfg_.log(log_level::info, fmt::format("kafka consumer of group {}: the cluster at {} "
                                            "answers again",
                                            cfg_.group, cfg_.brokers));
    reached_ = true;
    probe_failed_ = false;
    down_since_.reset();
    return;
  }
  probe_failed_ = true;
  auto out = std::chrono::duration<double>(clock::now() - *down_since_);
  if (out < cfg_.connect_timeout)
    return;
  unreachable_ = true;
  on_error(fmt::format("the cluster at {} {} for {:.1f} s, longer than the connect timeout "
                       "({:.1f} s); last error: {}",
                       cfg_.brokers, !reached_ ? "was not reached"
                                     : down_how_ == down_how::brokers_down
                                       ? "has had every broker down"
                                       : "has answered neither a commit nor a metadata request",
                       out.count(), std::chrono::duration<double>(cfg_.connect_timeout).count(),
                       down_reason_),
           true);
}

void kafka_consumer_group::check_backpressure() {
  std::vector<std::shared_ptr<kafka_partition>> parts;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (const auto& kv : parts_)
      parts.push_back(kv.second);
  }
  for (auto& p : parts) {
    auto act = backpressure(p->queued(), p->paused.load(), cfg_.pause_above, cfg_.resume_below);
    if (act != pause_action::none)
      (void) p->set_paused(act == pause_action::pause); // tried again at the next check if refused
  }
}

void kafka_consumer_group::on_assign(std::vector<RdKafka::TopicPartition*>& parts) {
  ++assignments_;
  auto err = consumer_->committed(parts, static_cast<int>(cfg_.committed_timeout.count()));
  if (err != RdKafka::ERR_NO_ERROR) {
    // Without the committed offsets, assign() still starts each partition at its committed
    // offset (OFFSET_INVALID), but the shards cannot know it: treat as a transient error.
    cfg_.log(log_level::warning, fmt::format("kafka consumer of group {}: fetching committed "
                                             "offsets failed: {}",
                                             cfg_.group, RdKafka::err2str(err)));
    for (auto* tp : parts)
      tp->set_offset(RdKafka::Topic::OFFSET_INVALID);
  }
  // Each partition's queue is taken (unforwarded) before assign() starts fetching: a message
  // fetched before would land on the consumer's own queue instead.
  std::vector<std::shared_ptr<kafka_partition>> fresh;
  for (auto* tp : parts) {
    std::optional<std::int64_t> committed;
    if (tp->offset() >= 0)
      committed = tp->offset();
    auto id = kafka_shard_id(tp->topic(), tp->partition());
    fresh.push_back(std::make_shared<kafka_partition>(consumer_.get(), id, tp->topic(),
                                                      tp->partition(), committed));
    store_->enlist(id, tp->topic(), tp->partition(), committed);
  }
  if (auto err = consumer_->assign(parts); err != RdKafka::ERR_NO_ERROR)
    on_error(fmt::format("assign failed: {}", RdKafka::err2str(err)), true);
  cfg_.log(log_level::info, fmt::format("kafka consumer of group {}: assigned {}", cfg_.group,
                                        partitions_text(parts, true)));
  for (auto& part : fresh)
    start_partition(part);
}

void kafka_consumer_group::start_partition(const std::shared_ptr<kafka_partition>& part) {
  const auto& id = part->id();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    parts_[id] = part;
  }
  auto g = shard_;
  g.shard.id = id;
  g.source = [part] { return std::make_shared<kafka_partition_source>(part); };
  g.sink = sink_;
  g.finite = false;
  if (auto err = rt_.start_shard(std::move(g)))
    on_error(fmt::format("shard {} cannot start: {}", id, to_string(err)), true);
}

void kafka_consumer_group::on_revoke(std::vector<RdKafka::TopicPartition*>& parts) {
  auto lost = consumer_->assignment_lost();
  if (lost) { // nothing of it may be committed: all fenced at once (a stop waits for the sink,
    // which would else still try the other partitions' commits, a commit timeout each)
    std::vector<shard_id> ids;
    for (auto* tp : parts)
      ids.push_back(kafka_shard_id(tp->topic(), tp->partition()));
    store_->delist(ids);
  } else
    cfg_.log(log_level::info, fmt::format("kafka consumer of group {}: revoked {} (they stop, "
                                          "checkpoint and commit)",
                                          cfg_.group, partitions_text(parts, false)));
  for (auto* tp : parts)
    stop_partition(kafka_shard_id(tp->topic(), tp->partition()), lost);
  consumer_->unassign();
}

void kafka_consumer_group::stop_partition(const shard_id& id, bool lost) {
  std::shared_ptr<kafka_partition> part;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = parts_.find(id);
    if (i == parts_.end())
      return;
    part = i->second;
    parts_.erase(i);
  }
  if (lost)
    cfg_.log(log_level::warning,
             fmt::format("kafka shard {}: assignment lost (this member was evicted from group {}): "
                         "its pending records are dropped uncommitted; the partition's next owner "
                         "resumes at the committed offset",
                         id, cfg_.group));
  else
    store_->revoking(id);
  if (auto err = rt_.stop_shard(id))
    cfg_.log(log_level::warning,
             fmt::format("kafka shard {} did not stop cleanly: {}", id, to_string(err)));
  store_->delist(id);
  part->close_queue();
}

void kafka_consumer_group::stop_all() {
  for (const auto& id : assigned())
    stop_partition(id, false);
}

} // namespace shardflow
