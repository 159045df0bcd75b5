#include <shardflow/actors/runtime.hpp>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/core/record_source.hpp>

namespace shardflow {

namespace {

// Keeps a finite runtime's root from shutting down while shards are still being added: a significant
// child that ends by itself (normally) when the host says the last shard is in (runtime::seal).
caf::behavior intake(caf::event_based_actor* self, caf::actor sup) {
  follow_supervisor(self, sup);
  return {
    [](start_atom) { return caf::ok_atom::value; },
    [self](end_atom) { self->quit(); },
  };
}

child_spec intake_child() {
  child_spec spec;
  spec.id = "shardflow-intake";
  spec.restart = restart_type::transient;
  spec.significant = true;
  spec.start = [](start_context& ctx) -> caf::expected<caf::actor> {
    return ctx.self->spawn(intake, caf::actor_cast<caf::actor>(ctx.self));
  };
  return spec;
}

} // namespace

caf::expected<std::unique_ptr<runtime>> runtime::start(caf::actor_system& sys, runtime_config cfg) {
  auto sink = cfg.sink ? cfg.sink
                       : spawn_checkpoint_sink(sys, std::make_shared<memory_checkpoint_store>());
  supervisor_flags flags;
  flags.how = strategy::one_for_one;
  flags.intensity = cfg.intensity;
  flags.period = cfg.period;
  flags.shutdown_mode = cfg.finite ? auto_shutdown::all_significant : auto_shutdown::never;
  flags.start_timeout = cfg.start_timeout;
  std::vector<child_spec> children;
  if (cfg.finite)
    children.push_back(intake_child());
  auto root = spawn_supervisor(sys, flags, std::move(children));
  if (!root)
    return root.error();
  return std::unique_ptr<runtime>{new runtime(sys, *root, sink)};
}

runtime::runtime(caf::actor_system& sys, caf::actor root, caf::actor sink)
  : self_(sys), root_(std::move(root)), sink_(std::move(sink)) {
  self_->monitor(root_);
}

runtime::~runtime() {
  shutdown();
  if (sink_)
    self_->send_exit(sink_, caf::exit_reason::user_shutdown);
}

template <class T, class... Ts>
caf::expected<T> runtime::call(const caf::actor& dst, Ts&&... xs) {
  caf::expected<T> result{caf::error{}};
  self_->request(dst, caf::infinite, std::forward<Ts>(xs)...)
    .receive([&](T& x) { result = std::move(x); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

caf::error runtime::start_shard(shard_group_config cfg) {
  if (!cfg.sink)
    cfg.sink = sink_;
  if (!cfg.source) {
    // One buffer for the shard's life: when the group restarts (its feeder with it), the next
    // feeder replays what the last one held and nothing pushed is lost.
    auto buffer = std::make_shared<replay_buffer>();
    cfg.source = [buffer] { return buffer; };
  }
  if (!cfg.shard.make_flusher)
    return make_error(errc::bad_child_spec,
                      fmt::format("shard {} has no flusher factory", cfg.shard.id));
  auto r = call<caf::actor>(root_, start_child_atom::value, shard_group(std::move(cfg)));
  return r ? caf::error{} : r.error();
}

caf::expected<caf::actor> runtime::member(const shard_id& id, const std::string& role) {
  auto groups = call<std::vector<child_info>>(root_, which_children_atom::value);
  if (!groups)
    return groups.error();
  for (auto& g : *groups) {
    if (g.id != id)
      continue;
    if (!g.handle)
      return make_error(errc::restarting, fmt::format("shard {} is not running", id));
    auto kids = call<std::vector<child_info>>(g.handle, which_children_atom::value);
    if (!kids)
      return kids.error();
    for (auto& k : *kids)
      if (k.id == role && k.handle)
        return k.handle;
    return make_error(errc::restarting, fmt::format("shard {}: its {} is restarting", id, role));
  }
  return make_error(errc::not_found, fmt::format("no shard {}", id));
}

caf::error runtime::push(const shard_id& id, record_batch batch) {
  auto feeder = member(id, "feeder");
  if (!feeder)
    return feeder.error();
  auto r = call<caf::ok_atom>(*feeder, push_atom::value, std::move(batch));
  return r ? caf::error{} : r.error();
}

caf::error runtime::end(const shard_id& id) {
  auto feeder = member(id, "feeder");
  if (!feeder)
    return feeder.error();
  self_->send(*feeder, end_atom::value);
  return {};
}

caf::expected<shard_stats> runtime::stats(const shard_id& id) {
  auto shard = member(id, "shard");
  if (!shard)
    return shard.error();
  return call<shard_stats>(*shard, stats_atom::value);
}

caf::error runtime::stop_shard(const shard_id& id) {
  auto r = call<caf::ok_atom>(root_, terminate_child_atom::value, id);
  if (!r)
    return r.error();
  auto d = call<caf::ok_atom>(root_, delete_child_atom::value, id);
  return d ? caf::error{} : d.error();
}

void runtime::seal() {
  if (sealed_)
    return;
  sealed_ = true;
  auto intake = call<std::vector<child_info>>(root_, which_children_atom::value);
  if (!intake)
    return;
  for (auto& c : *intake)
    if (c.id == "shardflow-intake" && c.handle)
      self_->send(c.handle, end_atom::value);
}

bool runtime::await(caf::timespan timeout) {
  if (finished_)
    return true;
  seal();
  self_->receive(
    [&](caf::down_msg& msg) {
      ended_ = msg.reason;
      finished_ = true;
    },
    caf::after(timeout) >> [] {});
  return finished_;
}

bool runtime::ended_cleanly() const {
  // OTP's `shutdown` is clean; `{shutdown, Why}` (a context) is how a supervisor reports giving up.
  return finished_
         && (!ended_ || (ended_ == caf::exit_reason::user_shutdown && ended_.context().empty()));
}

caf::error runtime::shutdown() {
  if (finished_)
    return ended_;
  self_->send_exit(root_, caf::exit_reason::user_shutdown);
  self_->receive([&](caf::down_msg& msg) { ended_ = msg.reason; });
  finished_ = true;
  return ended_;
}

} // namespace shardflow
