// examples/embedding.cpp - a host application that embeds shardflow in its own actor system, once
// from a host thread (the blocking facade) and once from an actor of its own (the front actor).
//
// The thread host starts a runtime (one supervision tree), starts four shards with a flusher of its
// own (one of them on a detached thread, as a blocking flusher would need), pushes records into
// them, tells them the input has ended, waits for the runtime's outcome (each shard ended, stopped
// or gave up), and reads each shard's meters (its last acknowledged checkpoint). The actor host does
// the same for one shard through the front actor's messages, never blocking: each push is sent when
// the previous one was answered, and an answer comes late while the shard is behind
// (backpressure). Exit code 0 when every shard ended at its last record, 1 otherwise.
#include <algorithm>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <shardflow/actors/runtime.hpp>
#include <shardflow/core/flusher.hpp>

namespace {

// The host's own flusher: batches up to 1,000 records and "writes" them by adding up their bytes.
class byte_counting_flusher final : public shardflow::flusher {
public:
  shardflow::add_result add(const shardflow::stream_record& x, shardflow::flush_token t) override {
    if (batch_.size() >= 1000)
      return shardflow::add_result::full;
    bytes_ += x.data.size();
    batch_.push_back(t);
    return shardflow::add_result::added;
  }

  std::vector<shardflow::flush_token> flush(shardflow::flush_mode) override {
    written_ += bytes_; // a real flusher writes and syncs here, then returns the tokens
    bytes_ = 0;
    return std::exchange(batch_, {});
  }

  std::vector<shardflow::flush_token> heartbeat() override {
    return {};
  }

private:
  std::vector<shardflow::flush_token> batch_;
  std::size_t bytes_ = 0;
  std::size_t written_ = 0;
};

constexpr std::uint64_t records = 50'000;

shardflow::shard_group_config order_shard(const std::string& id) {
  shardflow::shard_group_config g;
  g.shard.id = id;
  g.shard.make_flusher = [](const shardflow::shard_id&) {
    return std::make_unique<byte_counting_flusher>();
  };
  g.shard.batch.checkpoint_interval = std::chrono::milliseconds(50);
  g.finite = true;
  return g;
}

// Records [first, first + 500) of a shard.
shardflow::record_batch orders(std::uint64_t first) {
  std::vector<shardflow::stream_record> xs(500);
  for (std::uint64_t i = 0; i < 500; ++i) {
    xs[i].partition_key = "customer-" + std::to_string((first + i) % 97);
    xs[i].data = "order " + std::to_string(first + i);
    xs[i].sequence.base = shardflow::sequence_base{first + i};
  }
  return shardflow::record_batch{std::move(xs)};
}

// Prints how each shard's life ended; returns whether the runtime ended cleanly.
bool report(caf::actor_system& sys, const shardflow::runtime_outcome& outcome) {
  if (!outcome.ended) {
    std::fprintf(stderr, "embedding: the shards did not finish within a minute\n");
    return false;
  }
  // Each shard's life ended one way: ended (all records checkpointed), stopped, or gave_up (its
  // group exceeded its restart intensity; the reason says why). clean(): all ended or stopped.
  for (auto& s : outcome.shards)
    std::printf("%s: %s%s%s\n", s.id.c_str(), shardflow::to_string(s.outcome),
                s.reason.empty() ? "" : ": ", s.reason.c_str());
  if (!outcome.clean()) {
    // The verdict is in the shards' outcomes; the exit reason adds something only when the tree
    // itself failed (it is user_shutdown when it ended after a shard gave up).
    const bool gave_up = std::any_of(outcome.shards.begin(), outcome.shards.end(), [](auto& s) {
      return s.outcome == shardflow::shard_outcome::gave_up;
    });
    std::fprintf(stderr, "embedding: the runtime failed: %s\n",
                 gave_up ? "a shard gave up" : sys.render(outcome.reason).c_str());
    return false;
  }
  return true;
}

// The meters say where each shard's last acknowledged checkpoint is, without asking the store.
bool check_meters(const shardflow::runtime& rt) {
  bool ok = true;
  for (const auto& id : rt.shards()) {
    auto m = rt.meters(id);
    const auto at = m->acked_position.load(std::memory_order_relaxed);
    const bool at_end = m->acked_end.load(std::memory_order_relaxed);
    std::printf("%s: checkpoint %llu%s, %llu records received, %llu restarts\n", id.c_str(),
                static_cast<unsigned long long>(at), at_end ? " (ended)" : "",
                static_cast<unsigned long long>(m->records_received.load()),
                static_cast<unsigned long long>(m->restarts.load()));
    ok = ok && at == records - 1 && at_end;
  }
  return ok;
}

// A host thread: the blocking facade.
bool thread_host(caf::actor_system& sys) {
  shardflow::runtime_config rcfg;
  rcfg.finite = true; // the runtime ends once every shard has ended
  // rcfg.sink: a checkpoint sink over the host's store (actors/checkpoint_sink.hpp); by default
  // the runtime keeps checkpoints in memory.
  auto rt = shardflow::runtime::start(sys, rcfg);
  if (!rt) {
    std::fprintf(stderr, "embedding: %s\n", sys.render(rt.error()).c_str());
    return false;
  }
  constexpr int shards = 4;
  for (int s = 0; s < shards; ++s) {
    auto g = order_shard("orders-" + std::to_string(s));
    g.shard.detached = s == 0; // a blocking flusher would want a thread of its own
    if (auto err = (*rt)->start_shard(g)) {
      std::fprintf(stderr, "embedding: %s\n", sys.render(err).c_str());
      return false;
    }
  }
  for (std::uint64_t first = 0; first < records; first += 500)
    for (int s = 0; s < shards; ++s)
      if (auto err = (*rt)->push("orders-" + std::to_string(s), orders(first))) {
        std::fprintf(stderr, "embedding: push: %s\n", sys.render(err).c_str());
        return false;
      }
  if (auto st = (*rt)->stats("orders-1"))
    std::printf("orders-1 so far: %llu records received, %llu checkpoints acknowledged\n",
                static_cast<unsigned long long>(st->received),
                static_cast<unsigned long long>(st->acked));
  for (int s = 0; s < shards; ++s)
    (*rt)->end("orders-" + std::to_string(s));
  if (!report(sys, (*rt)->await(std::chrono::seconds(60))))
    return false;
  std::printf("runtime ended: every shard finished\n");
  return check_meters(**rt);
}

// A host that is an actor: one message at a time to the front actor, each answered asynchronously.
void push_from(caf::event_based_actor* self, caf::actor front, std::uint64_t first,
               std::shared_ptr<std::promise<shardflow::runtime_outcome>> done) {
  auto fail = [done](caf::error& err) {
    shardflow::runtime_outcome out;
    out.reason = std::move(err);
    done->set_value(std::move(out));
  };
  if (first == records) { // all pushed: end the input, then wait for the outcome
    self->request(front, caf::infinite, shardflow::end_atom::value, shardflow::shard_id{"events"})
      .then(
        [=](caf::ok_atom) {
          self->request(front, std::chrono::seconds(60), shardflow::await_atom::value)
            .then([done](shardflow::runtime_outcome& x) { done->set_value(std::move(x)); }, fail);
        },
        fail);
    return;
  }
  self
    ->request(front, caf::infinite, shardflow::push_atom::value, shardflow::shard_id{"events"},
              orders(first))
    .then([=](caf::ok_atom) { push_from(self, front, first + 500, done); }, fail);
}

// The actor host: starts its shard, then pushes (push_from).
void host_actor(caf::event_based_actor* self, caf::actor front,
                std::shared_ptr<std::promise<shardflow::runtime_outcome>> done) {
  self->request(front, caf::infinite, shardflow::start_child_atom::value, order_shard("events"))
    .then([=](caf::ok_atom) { push_from(self, front, 0, done); },
          [done](caf::error& err) {
            shardflow::runtime_outcome out;
            out.reason = std::move(err);
            done->set_value(std::move(out));
          });
}

bool actor_host(caf::actor_system& sys) {
  shardflow::runtime_config rcfg;
  rcfg.finite = true;
  auto front = shardflow::spawn_runtime(sys, rcfg);
  if (!front) {
    std::fprintf(stderr, "embedding: %s\n", sys.render(front.error()).c_str());
    return false;
  }
  auto done = std::make_shared<std::promise<shardflow::runtime_outcome>>();
  auto outcome = done->get_future();
  sys.spawn(host_actor, *front, done);
  bool ok = outcome.wait_for(std::chrono::seconds(90)) == std::future_status::ready
            && report(sys, outcome.get());
  caf::anon_send_exit(*front, caf::exit_reason::user_shutdown); // ends the front and its sink
  if (ok)
    std::printf("actor host: every shard finished\n");
  return ok;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  shardflow::configure(cfg);
  cfg.set("scheduler.max-threads", std::max(1u, std::thread::hardware_concurrency()));
  caf::actor_system sys{cfg};
  const bool threads_ok = thread_host(sys);
  const bool actors_ok = actor_host(sys);
  return threads_ok && actors_ok ? 0 : 1;
}
