// examples/supervision_tree.cpp - a hand-built supervision tree over shard groups: nested
// supervisors with different strategies, a failing shard whose failure escalates, stats read from
// the tree.
//
// The tree (each box a supervisor; a shard group is itself a rest_for_one supervisor over a feeder
// and a shard, see actors/shard.hpp):
//
//   root          one_for_one, intensity 3 / 60 s
//   ├── ingest    one_for_all, intensity 2 / 60 s, permanent       (one group fails: all restart)
//   │   ├── group ingest-0   null flusher, 3,000 records then quiet
//   │   └── group ingest-1   null flusher, 3,000 records then quiet
//   └── billing   rest_for_one, intensity 1 / 60 s, temporary      (the root lets it go)
//       ├── group billing-1  null flusher, 3,000 records then quiet
//       └── group billing-0  a flusher whose `add` always fails, group intensity 1
//
// What happens: billing-0's shard fails on its first record; its group restarts it once, then gives
// up and exits abnormally with errc::restart_limit_reached. `billing` (rest_for_one) restarts that
// group (the last child: nothing after it to restart), which gives up again; that is more than
// billing's intensity, so billing stops billing-1 and gives up in turn with restart_limit_reached.
// The root, whose billing child is temporary, does not restart it and keeps running `ingest`. The
// host reads every shard's stats by walking the tree (which_children, then stats from each shard
// actor), waits until the ingest shards have checkpointed their last record, stops the tree and
// checks the checkpoint store. Exit code 0 when all of that held, 1 otherwise.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/shard.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/checkpoint_store.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/core/record_source.hpp>
#include <shardflow/flushers/null_flusher.hpp>

namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t records = 3'000;

// A replayable source with `count` records, then none for now (the stream stays open, as a Kafka
// partition or a Kinesis shard does).
class quiet_after_source final : public shardflow::record_source {
public:
  quiet_after_source(std::string shard, std::uint64_t count)
    : shard_(std::move(shard)), count_(count) {
    // nop
  }

  void rewind(const std::optional<shardflow::sequence_number>& after) override {
    pos_ = after ? *after->base.to_uint64() + 1 : 0;
  }

  shardflow::record_batch read(std::size_t max) override {
    std::vector<shardflow::stream_record> xs;
    for (; xs.size() < max && pos_ < count_; ++pos_) {
      shardflow::stream_record x;
      x.partition_key = shard_;
      x.data = shard_ + ":" + std::to_string(pos_);
      x.sequence.base = shardflow::sequence_base{pos_};
      xs.push_back(std::move(x));
    }
    return shardflow::record_batch{std::move(xs)};
  }

  bool at_end() const override {
    return false;
  }

private:
  std::string shard_;
  std::uint64_t count_;
  std::uint64_t pos_ = 0;
};

// The failing flusher of billing-0: its disk is gone.
class failing_flusher final : public shardflow::flusher {
public:
  shardflow::add_result add(const shardflow::stream_record&, shardflow::flush_token) override {
    throw shardflow::error{shardflow::errc::io_failed, "billing-0: cannot write (disk gone)"};
  }

  std::vector<shardflow::flush_token> flush(shardflow::flush_mode) override {
    return {};
  }

  std::vector<shardflow::flush_token> heartbeat() override {
    return {};
  }
};

std::atomic<int> failing_incarnations{0};

shardflow::child_spec group(const std::string& id, caf::actor sink, bool failing) {
  shardflow::shard_group_config g;
  g.shard.id = id;
  g.shard.batch.checkpoint_interval = 20ms;
  g.shard.batch.flush_interval = 20ms;
  g.shard.heartbeat_interval = 20ms;
  g.shard.make_flusher = shardflow::null_flusher::factory(500);
  if (failing)
    g.shard.make_flusher = [](const shardflow::shard_id&) -> std::unique_ptr<shardflow::flusher> {
      ++failing_incarnations;
      return std::make_unique<failing_flusher>();
    };
  g.source = [id] { return std::make_shared<quiet_after_source>(id, records); };
  g.feeder.poll_interval = 20ms;
  g.sink = std::move(sink);
  g.intensity = 1;
  g.period = 60s;
  g.report = [](const std::string& what) { std::printf("  report: %s\n", what.c_str()); };
  return shardflow::shard_group(std::move(g));
}

shardflow::supervisor_flags flags(shardflow::strategy how, int intensity) {
  shardflow::supervisor_flags f;
  f.how = how;
  f.intensity = intensity;
  f.period = 60s;
  f.start_timeout = 30s;
  f.report = [](const std::string& what) { std::printf("  report: %s\n", what.c_str()); };
  return f;
}

// The tree below the root. `host` is told billing's handle when billing starts, so it can watch
// billing even if billing gives up before the host could ask the root for it.
std::vector<shardflow::child_spec> tree(caf::actor sink, caf::actor host) {
  using shardflow::strategy;
  auto ingest
    = shardflow::supervisor_child("ingest", flags(strategy::one_for_all, 2),
                                  {group("ingest-0", sink, false), group("ingest-1", sink, false)});
  auto billing
    = shardflow::supervisor_child("billing", flags(strategy::rest_for_one, 1),
                                  {group("billing-1", sink, false), group("billing-0", sink, true)},
                                  shardflow::restart_type::temporary);
  billing.start = [start = std::move(billing.start), host](shardflow::start_context& ctx) {
    auto result = start(ctx);
    if (result && *result)
      caf::anon_send(host, *result);
    return result;
  };
  return {std::move(ingest), std::move(billing)};
}

// Asks `sup` for its children; empty on error.
std::vector<shardflow::child_info> children(caf::scoped_actor& self, const caf::actor& sup) {
  std::vector<shardflow::child_info> result;
  if (!sup)
    return result;
  self->request(sup, 5s, shardflow::which_children_atom::value)
    .receive([&](std::vector<shardflow::child_info>& xs) { result = std::move(xs); },
             [&](caf::error&) {});
  return result;
}

// Returns the running child `id` of `sup`, or an invalid handle.
caf::actor child(caf::scoped_actor& self, const caf::actor& sup, const std::string& id) {
  for (auto& c : children(self, sup))
    if (c.id == id)
      return c.handle;
  return {};
}

// Walks root -> `sub` -> group `id` -> its shard and asks the shard for its stats.
std::optional<shardflow::shard_stats> shard_stats_of(caf::scoped_actor& self,
                                                     const caf::actor& root, const std::string& sub,
                                                     const std::string& id) {
  auto shard = child(self, child(self, child(self, root, sub), id), shardflow::shard_child_id);
  std::optional<shardflow::shard_stats> result;
  if (shard)
    self->request(shard, 5s, shardflow::stats_atom::value)
      .receive([&](shardflow::shard_stats& st) { result = std::move(st); }, [&](caf::error&) {});
  return result;
}

// Waits (bounded: 30 s) until both ingest shards report their last record acknowledged.
bool await_ingest(caf::scoped_actor& self, const caf::actor& root) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    int done = 0;
    for (auto id : {"ingest-0", "ingest-1"}) {
      auto st = shard_stats_of(self, root, "ingest", id);
      if (st && st->last_acked && st->last_acked->base == shardflow::sequence_base{records - 1})
        ++done;
    }
    if (done == 2)
      return true;
    std::this_thread::sleep_for(20ms); // polling observable state, bounded by the deadline
  }
  return false;
}

void print_stats(caf::scoped_actor& self, const caf::actor& root) {
  for (auto id : {"ingest-0", "ingest-1"})
    if (auto st = shard_stats_of(self, root, "ingest", id))
      std::printf("%s: generation %llu, %llu records received, %llu checkpoints, last %s\n", id,
                  static_cast<unsigned long long>(st->generation),
                  static_cast<unsigned long long>(st->received),
                  static_cast<unsigned long long>(st->acked),
                  st->last_acked ? shardflow::to_string(*st->last_acked).c_str() : "none");
  for (auto& c : children(self, root))
    std::printf("root child %s: %s\n", c.id.c_str(), c.handle ? "running" : "not running");
}

// Waits for the down message of the monitored `who` (bounded) and returns its reason.
std::optional<caf::error> await_down(caf::scoped_actor& self, const caf::actor& who) {
  std::optional<caf::error> result;
  bool timed_out = false;
  while (!result && !timed_out)
    self->receive(
      [&](caf::down_msg& m) {
        if (m.source == who.address())
          result = std::move(m.reason);
      },
      caf::after(60s) >> [&] { timed_out = true; });
  return result;
}

bool checkpoints_ok(const shardflow::memory_checkpoint_store& store) {
  bool ok = true;
  for (auto id : {"ingest-0", "ingest-1", "billing-1"}) {
    auto row = store.peek(id);
    const bool at_last = row && row->position
                         && row->position->base == shardflow::sequence_base{records - 1};
    std::printf("%s: checkpoint %s\n", id,
                row && row->position ? shardflow::to_string(*row->position).c_str() : "none");
    // billing-1 is stopped with billing, perhaps before its last record: only ingest must be done.
    if (std::string{id} != "billing-1")
      ok = ok && at_last;
  }
  return ok;
}

int run(caf::actor_system& sys) {
  auto store = std::make_shared<shardflow::memory_checkpoint_store>();
  auto sink = shardflow::spawn_checkpoint_sink(sys, store);
  caf::scoped_actor self{sys};
  auto root = shardflow::spawn_supervisor(sys, flags(shardflow::strategy::one_for_one, 3),
                                          tree(sink, caf::actor{self}));
  if (!root) {
    std::fprintf(stderr, "supervision_tree: %s\n", sys.render(root.error()).c_str());
    return 1;
  }
  self->monitor(*root);
  bool started = false;
  self->request(*root, 60s, shardflow::start_atom::value)
    .receive([&](caf::ok_atom) { started = true; },
             [&](caf::error& err) {
               std::fprintf(stderr, "supervision_tree: start: %s\n", sys.render(err).c_str());
             });
  caf::actor billing;
  if (started)
    self->receive([&](caf::actor& x) { billing = std::move(x); }, caf::after(10s) >> [] {});
  if (billing)
    self->monitor(billing); // if billing is gone already, the down message still says why
  auto billing_reason = billing ? await_down(self, billing) : std::nullopt;
  const bool ingest_done = started && await_ingest(self, *root);
  if (started)
    print_stats(self, *root);
  self->send_exit(*root, caf::exit_reason::user_shutdown);
  auto root_reason = await_down(self, *root);
  std::printf("billing ended: %s\n",
              billing_reason ? sys.render(*billing_reason).c_str() : "(not seen)");
  std::printf("root ended: %s\n", root_reason ? sys.render(*root_reason).c_str() : "(not seen)");
  std::printf("billing-0 flusher incarnations: %d\n", failing_incarnations.load());
  const bool escalated = billing_reason
                         && shardflow::code_of(*billing_reason)
                              == shardflow::errc::restart_limit_reached;
  // group restarts once (2 incarnations), billing restarts the group once: 4 in all
  const bool ok = started && escalated && ingest_done && failing_incarnations.load() == 4
                  && root_reason && checkpoints_ok(*store);
  std::printf("%s\n", ok ? "the failure escalated to billing and stopped there" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  shardflow::configure(cfg);
  caf::actor_system sys{cfg};
  return run(sys);
}
