// The shard actor, its feeder and its group, on the deterministic scheduler: replay after crashes,
// fencing, heartbeats, the watchdog, backpressure and checkpoint sink failures.
#include <shardflow/actors/shard.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <catch2/catch.hpp>

#include "tests/support/deterministic_fixture.hpp"
#include "tests/support/generator_source.hpp"
#include "tests/support/recording_flusher.hpp"
#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/core/checkpoint_store.hpp>

using namespace shardflow;
using namespace std::chrono_literals;
using shardflow::testing::deterministic_fixture;
using shardflow::testing::flusher_script;
using shardflow::testing::generator_source;
using shardflow::testing::recording_flusher;

namespace {

using open_atom = caf::atom_constant<caf::atom("open")>;

// A checkpoint sink in front of a memory store that can hold saves back, or fail the next ones.
struct gated_sink_state {
  std::shared_ptr<memory_checkpoint_store> store;
  bool closed = false;
  int fail_next = 0;
  struct held_save {
    caf::response_promise rp;
    shard_id id;
    std::uint64_t gen;
    checkpoint cp;
  };
  std::vector<held_save> held;
};

caf::behavior gated_sink(caf::stateful_actor<gated_sink_state>* self,
                         std::shared_ptr<memory_checkpoint_store> store, int fail_next) {
  self->state.store = std::move(store);
  self->state.fail_next = fail_next;
  auto do_save = [self](const shard_id& id, std::uint64_t gen,
                        const checkpoint& cp) -> caf::result<caf::ok_atom> {
    // A save answers at once unless the gate is closed.
    try {
      self->state.store->save(id, gen, cp);
      return caf::ok_atom::value;
    } catch (const error& e) {
      return make_error(e.code(), e.what());
    }
  };
  return {
    [self](load_atom, const shard_id& id) { return self->state.store->load(id); },
    [self, do_save](save_atom, const shard_id& id, std::uint64_t gen,
                    const checkpoint& cp) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.fail_next > 0) {
        --st.fail_next;
        return make_error(errc::checkpoint_failed, "injected sink failure");
      }
      if (st.closed) {
        st.held.push_back({self->make_response_promise(), id, gen, cp});
        return st.held.back().rp;
      }
      return do_save(id, gen, cp);
    },
    [self](open_atom, bool closed) {
      auto& st = self->state;
      st.closed = closed;
      if (closed)
        return;
      for (auto& h : st.held) {
        try {
          st.store->save(h.id, h.gen, h.cp);
          h.rp.deliver(caf::ok_atom::value);
        } catch (const error& e) {
          h.rp.deliver(make_error(e.code(), e.what()));
        }
      }
      st.held.clear();
    },
  };
}

struct fixture : deterministic_fixture {
  std::shared_ptr<memory_checkpoint_store> store = std::make_shared<memory_checkpoint_store>();
  std::shared_ptr<flusher_script> script = std::make_shared<flusher_script>();
  caf::actor sink = spawn_checkpoint_sink(sys, store);
  caf::actor root;
  // Checkpoints each feeder incarnation's source was rewound to, in order.
  std::shared_ptr<std::vector<std::optional<std::uint64_t>>> rewinds
    = std::make_shared<std::vector<std::optional<std::uint64_t>>>();

  shard_group_config group(const std::string& id, std::uint64_t records, bool finite) {
    shard_group_config g;
    g.shard.id = id;
    g.shard.make_flusher = recording_flusher::factory(script);
    g.shard.batch.flush_interval = 0ms;
    g.shard.batch.checkpoint_interval = 0ms;
    g.shard.heartbeat_interval = 1s;
    g.shard.credit = 200;
    g.feeder.max_batch = 50;
    g.feeder.poll_interval = 0ms;
    g.finite = finite;
    g.sink = sink;
    g.intensity = 100;
    g.backoff = {}; // restarts at once: the test does not wait out a backoff
    auto log = rewinds;
    g.source = [id, records, log, finite] {
      struct logging_source final : record_source {
        generator_source gen;
        std::shared_ptr<std::vector<std::optional<std::uint64_t>>> log;
        bool finite;
        logging_source(std::string id, std::uint64_t n, decltype(log) l, bool f)
          : gen(std::move(id), n), log(std::move(l)), finite(f) {
        }
        void rewind(const std::optional<sequence_number>& after) override {
          log->push_back(after ? after->base.to_uint64() : std::nullopt);
          gen.rewind(after);
        }
        record_batch read(std::size_t max) override {
          return gen.read(max);
        }
        bool at_end() const override {
          return finite && gen.at_end(); // an unbounded stream that has nothing new right now
        }
      };
      return std::make_shared<logging_source>(id, records, log, finite);
    };
    return g;
  }

  void start(shard_group_config g) {
    supervisor_flags f;
    f.intensity = 10;
    f.shutdown_mode = g.finite ? auto_shutdown::all_significant : auto_shutdown::never;
    auto sup = spawn_supervisor(sys, f, {shard_group(std::move(g))});
    REQUIRE(sup);
    root = *sup;
    run();
  }

  caf::actor member(const std::string& id, const std::string& role) {
    auto groups = ask<std::vector<child_info>>(root, which_children_atom::value);
    REQUIRE(groups.value);
    for (auto& g : *groups.value) {
      if (g.id != id || !g.handle)
        continue;
      auto kids = ask<std::vector<child_info>>(g.handle, which_children_atom::value);
      REQUIRE(kids.value);
      for (auto& k : *kids.value)
        if (k.id == role)
          return k.handle;
    }
    return caf::actor{};
  }

  shard_stats stats(const std::string& id) {
    auto shard = member(id, shard_child_id);
    REQUIRE(shard);
    auto r = ask<shard_stats>(shard, stats_atom::value);
    REQUIRE(r.value);
    return *r.value;
  }

  std::optional<std::uint64_t> stored(const std::string& id) {
    auto row = store->peek(id);
    if (!row || !row->position)
      return std::nullopt;
    return row->position->base.to_uint64();
  }

  // How often each record index of `id` was made durable.
  std::map<std::uint64_t, int> durable_counts(const std::string& id) {
    std::map<std::uint64_t, int> result;
    for (auto& d : script->durable_data)
      if (d.rfind(id + ":", 0) == 0)
        ++result[std::stoull(d.substr(id.size() + 1))];
    return result;
  }
};

} // namespace

SCENARIO_METHOD(
  fixture,
  "a crash between checkpoints replays exactly the records after the last acknowledged checkpoint",
  "[actors][shard]") {
  script->capacity = 100;
  script->fail_on_data = {"s:537"};
  start(group("s", 1000, true));
  CHECK(is_dead(root)); // the finite job ended by itself
  REQUIRE(rewinds->size() == 2);
  CHECK_FALSE((*rewinds)[0].has_value());
  REQUIRE((*rewinds)[1].has_value());
  const auto k = *(*rewinds)[1]; // the checkpoint the second incarnation resumed from
  CHECK(k < 537);
  // The second incarnation's first record is k + 1: records up to k are not offered again.
  auto first_replayed = std::find(script->added_data.begin(), script->added_data.end(),
                                  "s:" + std::to_string(k + 1));
  REQUIRE(first_replayed != script->added_data.end());
  auto second = std::find(first_replayed + 1, script->added_data.end(),
                          "s:" + std::to_string(k + 1));
  CHECK(second != script->added_data.end()); // offered once before the crash, once after
  auto counts = durable_counts("s");
  CHECK(counts.size() == 1000); // nothing lost
  for (auto& [i, n] : counts)
    if (n > 1)
      CHECK(i > k); // duplicates only after the resumed checkpoint
  CHECK(stored("s") == 999u);
  CHECK(store->peek("s")->ended);
  CHECK(store->peek("s")->generation == 2);
}

SCENARIO_METHOD(fixture, "a crash during the final flush loses nothing", "[actors][shard]") {
  script->capacity = 1000;
  script->hold = {}; // everything stays pending until the final full flush
  script->only_heartbeat = true;
  script->fail_flush = false;
  auto g = group("f", 300, true);
  g.shard.heartbeat_interval = 0ms;
  script->fail_on_data.clear();
  // The first full flush throws; the next incarnation replays and finishes.
  struct once {
    bool armed = true;
  };
  auto state = std::make_shared<once>();
  auto inner = g.shard.make_flusher;
  g.shard.make_flusher = [inner, state](const shard_id& id) -> std::unique_ptr<flusher> {
    struct failing_full final : flusher {
      std::unique_ptr<flusher> f;
      std::shared_ptr<once> s;
      add_result add(const stream_record& x, flush_token t) override {
        return f->add(x, t);
      }
      std::vector<flush_token> flush(flush_mode m) override {
        if (m == flush_mode::full && s->armed) {
          s->armed = false;
          throw std::runtime_error("disk full during the final flush");
        }
        return f->flush(m);
      }
      std::vector<flush_token> heartbeat() override {
        return f->heartbeat();
      }
    };
    auto result = std::make_unique<failing_full>();
    result->f = inner(id);
    result->s = state;
    return result;
  };
  start(g);
  CHECK(is_dead(root));
  CHECK_FALSE(state->armed);
  CHECK(durable_counts("f").size() == 300);
  CHECK(stored("f") == 299u);
  CHECK(store->peek("f")->generation == 2);
}

SCENARIO_METHOD(fixture, "a shard killed while its final checkpoint is in flight loses nothing",
                "[actors][shard]") {
  auto gated = sys.spawn(gated_sink, store, 0);
  auto g = group("k", 120, true);
  g.sink = gated;
  g.shard.heartbeat_interval = 0ms;
  g.shard.batch.flush_interval = 1h; // records stay in the flusher until the final flush
  g.shard.batch.checkpoint_interval = 1h;
  caf::anon_send(gated, open_atom::value, true); // hold every save
  run();
  start(g);
  auto shard = member("k", shard_child_id);
  REQUIRE(shard);
  CHECK(durable_counts("k").size() == 120); // the final flush ran; its checkpoint waits
  CHECK_FALSE(stored("k"));
  caf::anon_send_exit(shard, caf::exit_reason::kill);
  run();
  caf::anon_send(gated, open_atom::value, false);
  run();
  // The restarted incarnation replays everything (no checkpoint was acknowledged) and finishes.
  CHECK(durable_counts("k").size() == 120);
  CHECK(durable_counts("k").at(0) == 2);
  CHECK(stored("k") == 119u);
  CHECK(is_dead(root));
}

SCENARIO("an old incarnation cannot overwrite a newer checkpoint", "[actors][shard]") {
  memory_checkpoint_store store;
  auto first = store.load("x");
  sequence_number s10{sequence_base{10}, std::nullopt, 0, 0};
  sequence_number s20{sequence_base{20}, std::nullopt, 0, 0};
  store.save("x", first.generation, checkpoint{s10});
  auto second = store.load("x");
  CHECK(second.generation == first.generation + 1);
  CHECK(second.position == s10);
  CHECK_THROWS_WITH(store.save("x", first.generation, checkpoint{s20}),
                    Catch::Contains("incarnation 1 refused"));
  store.save("x", second.generation, checkpoint{s20});
  CHECK(store.peek("x")->position == s20);
  CHECK_THROWS_WITH(store.save("x", second.generation, checkpoint{s10}),
                    Catch::Contains("move back"));
}

SCENARIO_METHOD(fixture, "a fenced incarnation stops instead of writing", "[actors][shard]") {
  script->only_heartbeat = true;
  auto g = group("z", 10, false);
  start(g);
  auto old = member("z", shard_child_id);
  REQUIRE(old);
  store->load("z"); // a newer incarnation (elsewhere) took over the shard
  script->next_heartbeat_all = true;
  advance(1s); // the old incarnation's checkpoint is refused as stale
  caf::error reason;
  REQUIRE(is_dead(old, &reason));
  CHECK(code_of(reason) == errc::stale_generation);
  CHECK_FALSE(stored("z"));
  CHECK(member("z", shard_child_id)); // its group restarted it under a new generation
  CHECK(stats("z").generation == 3);
}

SCENARIO_METHOD(fixture, "heartbeat tokens let a quiet shard checkpoint", "[actors][shard]") {
  script->only_heartbeat = true;
  start(group("q", 10, false));
  CHECK(stats("q").received == 10);
  CHECK_FALSE(stored("q"));
  script->next_heartbeat_all = true;
  advance(1s);
  CHECK(stored("q") == 9u);
  CHECK(stats("q").processor.heartbeat_flushes == 1);
}

SCENARIO_METHOD(fixture,
                "the watchdog: a quiet shard is idle, never restarted; records held "
                "without progress fire it",
                "[actors][shard]") {
  script->only_heartbeat = true; // the flusher makes nothing durable unless the test says so
  auto g = group("w", 0, false);
  g.source = [] { return std::make_shared<replay_buffer>(); }; // push mode, nothing pushed yet
  g.shard.batch.watchdog_timeout = 3s;
  start(g);
  auto first = member("w", shard_child_id);
  advance(10s); // a quiet stream: waiting at the end of the input is not being stuck
  CHECK_FALSE(is_dead(first));
  CHECK(stats("w").generation == 1);
  auto feeder = member("w", feeder_child_id);
  auto pushed = ask<caf::ok_atom>(feeder, push_atom::value,
                                  record_batch{{shardflow::testing::make_record(0)}});
  REQUIRE(pushed.value);
  advance(2s); // the flusher holds the record, nothing becomes durable
  CHECK_FALSE(is_dead(first));
  advance(1s);
  caf::error reason;
  REQUIRE(is_dead(first, &reason));
  CHECK(code_of(reason) == errc::watchdog_timeout);
  CHECK(member("w", shard_child_id)); // restarted
}

SCENARIO_METHOD(fixture,
                "a quiet shard checkpoints its last records when the checkpoint interval ends, "
                "not at its next heartbeat",
                "[actors][shard]") {
  auto g = group("c", 20, false); // 20 records, then nothing new
  g.feeder.poll_interval = 100ms;
  g.shard.batch.checkpoint_interval = 300ms;
  g.shard.heartbeat_interval = 5s;
  start(g);
  CHECK(stats("c").received == 20);
  CHECK_FALSE(stored("c")); // the interval has not passed since the processor started
  advance(300ms);
  CHECK(stored("c") == 19u); // long before the heartbeat at 5 s
  CHECK(stats("c").processor.checkpoints == 1);
  advance(2s);
  CHECK(stats("c").processor.checkpoints == 1); // nothing more to do: no more checkpoints
}

SCENARIO_METHOD(fixture,
                "a quiet shard whose checkpoint interval ends after its next heartbeat "
                "checkpoints when the interval ends, not at the heartbeat after",
                "[actors][shard]") {
  auto g = group("h", 20, false);
  g.feeder.poll_interval = 100ms;
  g.shard.batch.checkpoint_interval = 1500ms;
  g.shard.heartbeat_interval = 1s;
  start(g);
  CHECK(stats("h").received == 20);
  advance(1s); // the heartbeat: too early for the interval
  CHECK_FALSE(stored("h"));
  advance(400ms);
  CHECK_FALSE(stored("h"));
  advance(100ms);
  CHECK(stored("h") == 19u); // at 1.5 s, not at the heartbeat at 2 s
  CHECK(stats("h").processor.checkpoints == 1);
}

SCENARIO_METHOD(fixture, "the watchdog: a followed source with nothing new keeps its shard",
                "[actors][shard]") {
  auto g = group("f", 20, false); // 20 records, then nothing new (at_end stays false)
  g.feeder.poll_interval = 100ms;
  g.shard.batch.watchdog_timeout = 1s;
  start(g);
  auto first = member("f", shard_child_id);
  CHECK(stats("f").received == 20);
  advance(10s); // ten timeouts of polls that find nothing
  CHECK_FALSE(is_dead(first));
  CHECK(stats("f").generation == 1);
}

SCENARIO_METHOD(fixture, "backpressure stops a fast producer until checkpoints free the buffer",
                "[actors][shard]") {
  script->only_heartbeat = true; // nothing becomes durable until the test says so
  auto g = group("b", 0, false);
  g.source = [] { return std::make_shared<replay_buffer>(); };
  g.feeder.push_limit = 1000;
  start(g);
  auto feeder = member("b", feeder_child_id);
  auto acks = std::make_shared<int>(0);
  // A producer that sends 50 batches of 100 records at once and counts the acknowledgements.
  spawn_fn([feeder, acks](caf::event_based_actor* self) {
    for (std::uint64_t b = 0; b < 50; ++b) {
      std::vector<stream_record> xs;
      for (std::uint64_t i = 0; i < 100; ++i)
        xs.push_back(shardflow::testing::make_record(b * 100 + i));
      self->request(feeder, caf::infinite, push_atom::value, record_batch{std::move(xs)})
        .then([acks](caf::ok_atom) { ++*acks; }, [](caf::error&) {});
    }
  });
  run();
  CHECK(*acks == 10); // 1,000 records held for replay; the other 40 batches wait at the producer
  CHECK(stats("b").received == 1000);
  for (int round = 0; round < 10 && *acks < 50; ++round) {
    script->next_heartbeat_all = true;
    advance(1s); // durable -> checkpoint -> acked -> released -> admitted
  }
  CHECK(*acks == 50);
  CHECK(stats("b").received == 5000);
}

SCENARIO_METHOD(fixture,
                "a failing checkpoint sink is retried with backoff, never taken as success",
                "[actors][shard]") {
  auto failing = sys.spawn(gated_sink, store, 2);
  auto g = group("r", 10, false);
  g.sink = failing;
  g.shard.retry_min = 100ms;
  auto lines = std::make_shared<std::vector<std::string>>();
  g.shard.log = [lines](log_level level, std::string_view text) {
    if (level == log_level::warning)
      lines->emplace_back(text);
  };
  start(g);
  auto s = stats("r");
  CHECK(s.sink_failures == 1);
  REQUIRE(lines->size() == 1); // through the shard's sink, not printed by the library
  CHECK(lines->front()
        == "r: checkpoint save failed (checkpoint_failed: injected sink failure); retry 1 in 100 "
           "ms");
  CHECK_THAT(lines->front(), Catch::Contains("retry 1 in 100 ms"));
  CHECK(s.acked == 0);
  CHECK_FALSE(s.last_acked);
  CHECK_FALSE(stored("r"));
  advance(100ms);
  CHECK(stats("r").sink_failures == 2);
  CHECK_FALSE(stored("r"));
  advance(200ms);
  s = stats("r");
  CHECK(s.acked == 1);
  CHECK(stored("r") == 9u);
  CHECK(s.last_acked->base == sequence_base{9});
}

SCENARIO_METHOD(fixture, "a graceful stop checkpoints at the last record", "[actors][shard]") {
  auto g = group("g", 500, false);
  g.shard.batch.flush_interval = 1h;
  g.shard.batch.checkpoint_interval = 1h;
  script->capacity = 1000;
  start(g);
  CHECK(stats("g").received == 500);
  CHECK_FALSE(stored("g"));
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
  CHECK(is_dead(root));
  CHECK(stored("g") == 499u);
  CHECK(durable_counts("g").size() == 500);
}

SCENARIO_METHOD(fixture, "pushed records survive a restart of the whole group", "[actors][shard]") {
  // The group gives up at the first crash (intensity 0); the root restarts it, and the new feeder
  // replays the buffer that outlived the old one.
  auto buffer = std::make_shared<replay_buffer>();
  auto g = group("p", 0, false);
  g.source = [buffer] { return buffer; };
  g.intensity = 0;
  g.feeder.push_limit = 10;
  script->fail_on_data = {"r5"};
  start(g);
  auto feeder = member("p", feeder_child_id);
  auto acks = std::make_shared<std::vector<caf::error>>();
  spawn_fn([feeder, acks](caf::event_based_actor* self) {
    for (std::uint64_t b = 0; b < 2; ++b) {
      std::vector<stream_record> xs;
      for (std::uint64_t i = 0; i < 10; ++i)
        xs.push_back(shardflow::testing::make_record(b * 10 + i));
      self->request(feeder, caf::infinite, push_atom::value, record_batch{std::move(xs)})
        .then([acks](caf::ok_atom) { acks->push_back(caf::error{}); },
              [acks](caf::error& e) { acks->push_back(e); });
    }
  });
  run();
  REQUIRE(acks->size() == 2);
  CHECK_FALSE((*acks)[0]);                        // taken before the crash
  CHECK(code_of((*acks)[1]) == errc::restarting); // waited, then told to push again
  CHECK(member("p", feeder_child_id) != feeder);  // the group was restarted
  CHECK(stored("p") == 9u);                       // records 0..9 replayed and made durable
  for (std::uint64_t i = 0; i < 10; ++i)
    CHECK(
      std::count(script->durable_data.begin(), script->durable_data.end(), "r" + std::to_string(i))
      >= 1);
}

SCENARIO("a shard that moves again after its end is no longer ended", "[actors][shard]") {
  memory_checkpoint_store store;
  auto g = store.load("x").generation;
  sequence_number s1{sequence_base{1}, std::nullopt, 0, 0};
  sequence_number s2{sequence_base{2}, std::nullopt, 0, 0};
  store.save("x", g, checkpoint{s1});
  store.save("x", g, checkpoint{});
  CHECK(store.peek("x")->ended);
  store.save("x", g, checkpoint{s2});
  CHECK_FALSE(store.peek("x")->ended);
  CHECK(store.peek("x")->position == s2);
}

SCENARIO_METHOD(fixture, "a finite shard's meters say it ended at its last record",
                "[actors][shard][meters]") {
  auto meters = std::make_shared<shard_meters>();
  auto g = group("m", 300, true);
  g.shard.meters = meters;
  CHECK(meters->outcome == shard_outcome::running);
  CHECK(meters->acked_position == shard_meters::no_position);
  start(g);
  CHECK(is_dead(root));
  CHECK(meters->generation == 1);
  CHECK(meters->restarts == 0);
  CHECK(meters->records_received == 300);
  CHECK(meters->acked_position == 299);
  CHECK(meters->acked_end);
  CHECK(meters->checkpoints_acked >= 2); // at least the last position and the end marker
  CHECK(meters->outcome == shard_outcome::ended);
}

SCENARIO_METHOD(fixture, "a restarted shard's meters count the restart and the replayed records",
                "[actors][shard][meters]") {
  auto meters = std::make_shared<shard_meters>();
  script->capacity = 100;
  script->fail_on_data = {"c:537"};
  auto g = group("c", 1000, true);
  g.shard.meters = meters;
  start(g);
  CHECK(is_dead(root));
  REQUIRE(rewinds->size() == 2);
  const auto k = *(*rewinds)[1];
  CHECK(meters->generation == 2);
  CHECK(meters->restarts == 1);
  // The first incarnation received up to 537 at least; the second from k + 1 to the end.
  CHECK(meters->records_received >= 1000 + (537 - k));
  CHECK(meters->acked_position == 999);
  CHECK(meters->outcome == shard_outcome::ended);
}

SCENARIO_METHOD(fixture, "a stopped shard's meters say stopped, not ended",
                "[actors][shard][meters]") {
  auto meters = std::make_shared<shard_meters>();
  auto g = group("t", 500, false);
  g.shard.meters = meters;
  g.shard.batch.flush_interval = 1h;
  g.shard.batch.checkpoint_interval = 1h;
  script->capacity = 1000;
  start(g);
  CHECK(meters->records_received == 500);
  CHECK(meters->checkpoints_acked == 0);
  CHECK(meters->outcome == shard_outcome::running);
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
  CHECK(is_dead(root));
  CHECK(meters->acked_position == 499);
  CHECK_FALSE(meters->acked_end);
  CHECK(meters->outcome == shard_outcome::stopped);
}

SCENARIO_METHOD(fixture, "a position beyond 64 bits is metered as no_position",
                "[actors][shard][meters]") {
  auto meters = std::make_shared<shard_meters>();
  auto g = group("big", 0, true);
  g.shard.meters = meters;
  g.source = [] {
    struct big_source final : record_source {
      bool done = false;
      void rewind(const std::optional<sequence_number>&) override {
        done = false;
      }
      record_batch read(std::size_t) override {
        if (done)
          return {};
        done = true;
        stream_record x;
        x.partition_key = "k";
        x.data = "big";
        x.sequence.base
          = sequence_base::parse("49590338271490256608559692538361571095921575989136");
        return record_batch{std::vector<stream_record>{x}};
      }
      bool at_end() const override {
        return done;
      }
    };
    return std::make_shared<big_source>();
  };
  start(g);
  CHECK(is_dead(root));
  CHECK(meters->records_received == 1);
  CHECK(meters->checkpoints_acked >= 2);
  CHECK(meters->acked_position == shard_meters::no_position);
  CHECK(meters->acked_end);
  CHECK(meters->outcome == shard_outcome::ended);
}

namespace {

// A finite source that stops (at a bad line, say) after its records: at_end and stopped.
struct stopping_source final : record_source {
  generator_source gen;
  explicit stopping_source(std::string id, std::uint64_t n) : gen(std::move(id), n) {
  }
  void rewind(const std::optional<sequence_number>& after) override {
    gen.rewind(after);
  }
  record_batch read(std::size_t max) override {
    return gen.read(max);
  }
  bool at_end() const override {
    return gen.at_end();
  }
  bool stopped() const override {
    return gen.at_end();
  }
};

} // namespace

SCENARIO_METHOD(fixture, "a source that stopped before its end: checkpointed, not ended, stopped",
                "[actors][shard]") {
  auto g = group("p", 0, true);
  g.source = [] { return std::make_shared<stopping_source>("p", 120); };
  g.shard.meters = std::make_shared<shard_meters>();
  auto meters = g.shard.meters;
  start(g);
  CHECK(is_dead(root));       // a finite job still ends
  CHECK(stored("p") == 119u); // what is durable is checkpointed ...
  REQUIRE(store->peek("p"));
  CHECK_FALSE(store->peek("p")->ended); // ... but not the end: a rerun resumes there
  CHECK(meters->outcome.load() == shard_outcome::stopped);
  CHECK_FALSE(meters->acked_end.load());
  CHECK(script->durable_data.size() == 120);
}

namespace {

// A store that counts the end markers and the positions each shard saved.
struct counting_store final : checkpoint_store {
  memory_checkpoint_store inner;
  std::map<shard_id, int> ends;
  std::map<shard_id, int> positions;
  stored_checkpoint load(const shard_id& id) override {
    return inner.load(id);
  }
  void save(const shard_id& id, std::uint64_t generation, const checkpoint& cp) override {
    inner.save(id, generation, cp);
    ++(cp.position ? positions : ends)[id];
  }
};

} // namespace

SCENARIO_METHOD(fixture, "a finite shard writes its end marker once whether it had records or none",
                "[actors][shard]") {
  auto counted = std::make_shared<counting_store>();
  for (std::uint64_t records : {0u, 1u, 300u}) {
    const auto id = "e" + std::to_string(records);
    auto g = group(id, records, true);
    g.sink = spawn_checkpoint_sink(sys, counted);
    g.shard.meters = std::make_shared<shard_meters>();
    auto meters = g.shard.meters;
    start(g);
    CHECK(is_dead(root));
    auto row = counted->inner.peek(id);
    REQUIRE(row);
    CHECK(row->ended);
    CHECK(counted->ends[id] == 1);
    CHECK(meters->outcome.load() == shard_outcome::ended);
    if (records == 0) {
      CHECK_FALSE(row->position);
      CHECK(counted->positions[id] == 0);
      CHECK(meters->checkpoints_acked.load() == 1); // the end marker alone
    } else {
      CHECK(row->position->base.to_uint64() == records - 1);
    }
  }
}

TEST_CASE("a group restarts its shard with backoff by default, which still trips the intensity "
          "within the period") {
  shard_group_config g;
  CHECK(g.backoff.min == 100ms);
  std::chrono::nanoseconds waited{0};
  for (int n = 0; n < g.intensity; ++n) // the longest waits: every jitter draw at its top
    waited += backoff_delay(g.backoff, static_cast<unsigned>(n), 0.999999);
  CHECK(waited < g.period);
  CHECK(backoff_delay(g.backoff, 0, 0.0) == 100ms);
  CHECK(backoff_delay(g.backoff, 40, 0.0) == 1s);
}

TEST_CASE("a shard group's report lines name the shard once and each code once") {
  CHECK(group_report_line("s-1",
                          "child shard failed: flusher_failed: shard s-1: the flusher failed "
                          "in add: disk full")
        == "s-1: failed (flusher_failed): the flusher failed in add: disk full");
  CHECK(group_report_line("s-1", "child feeder failed: io_failed: cannot read in/s-1: EIO")
        == "s-1: its feeder failed (io_failed): cannot read in/s-1: EIO");
  CHECK(group_report_line("s-1", "giving up: restart limit reached: more than 2 restarts in 10 s "
                                 "(last: child shard: watchdog_timeout: shard s-1: no progress)")
        == "s-1: gave up: more than 2 restarts in 10 s (last: watchdog_timeout: no progress)");
  CHECK(group_report_line("s-1", "child shard failed: system_error(runtime_error)")
        == "s-1: failed: system_error(runtime_error)");
}

namespace {

// A stand-in for a shard's supervisor and feeder at once: it answers the attach and notes each
// demand, so a test sees the credit a shard gives back; records reach the shard from the test.
struct credit_log {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> demands; // (records, bytes)
  caf::actor shard;
};

caf::actor spawn_credit_feeder(deterministic_fixture& fx, std::shared_ptr<credit_log> out,
                               shard_config cfg, caf::actor sink) {
  return fx.spawn_fn([=](caf::event_based_actor* self) -> caf::behavior {
    out->shard = spawn_shard(self, cfg, caf::actor_cast<caf::actor>(self), sink);
    return {
      [](attach_atom, const std::optional<sequence_number>&) { return caf::ok_atom::value; },
      [out](demand_atom, std::uint64_t n, std::uint64_t bytes) {
        out->demands.emplace_back(n, bytes);
      },
      [](acked_atom, const sequence_number&) {},
    };
  });
}

// A shard with a window of `credit` records and `credit_bytes` bytes under a credit stand-in,
// started. The stand-in is told to stop when the scenario ends, failed or not (a live stand-in
// keeps its shard alive, and the fixture cannot shut the system down under them).
struct credit_shard {
  std::shared_ptr<credit_log> out = std::make_shared<credit_log>();
  caf::actor stand_in;
  bool started = false;

  credit_shard(fixture& fx, std::uint64_t credit, std::uint64_t credit_bytes) {
    shard_config cfg = fx.group("c", 0, false).shard;
    cfg.credit = credit;
    cfg.credit_bytes = credit_bytes;
    stand_in = spawn_credit_feeder(fx, out, cfg, fx.sink);
    fx.run();
    started = fx.ask<caf::ok_atom>(out->shard, start_atom::value).value.has_value();
  }
  ~credit_shard() {
    caf::anon_send_exit(stand_in, caf::exit_reason::user_shutdown);
  }
  credit_shard(const credit_shard&) = delete;
  credit_shard& operator=(const credit_shard&) = delete;
};

// `count` records of `bytes` bytes each, numbered from `first`.
record_batch sized_batch(std::uint64_t first, std::uint64_t count, std::size_t bytes) {
  testing::sized_source src{first + count, bytes};
  if (first > 0) {
    sequence_number before;
    before.base = sequence_base{first - 1};
    src.rewind(before);
  }
  return src.read(count);
}

} // namespace

SCENARIO_METHOD(fixture, "a shard gives credit back once half of its window is processed",
                "[actors][shard]") {
  credit_shard c{*this, 100, 1'000'000};
  REQUIRE(c.started);
  auto& out = c.out;
  REQUIRE(out->demands.size() == 1); // the whole window, once started
  CHECK(out->demands[0] == std::make_pair(std::uint64_t{100}, std::uint64_t{1'000'000}));
  // Twice, since the count starts over after each demand: four batches of 10 records (40 of 100
  // owed, under half) give nothing back; the fifth makes half, and its 50 records and their bytes
  // go back in one demand.
  for (std::uint64_t w = 0; w < 2; ++w) {
    for (std::uint64_t b = 0; b < 4; ++b)
      anon_send(out->shard, records_atom::value, sized_batch((w * 5 + b) * 10, 10, 7));
    run();
    CHECK(out->demands.size() == 1 + w);
    anon_send(out->shard, records_atom::value, sized_batch((w * 5 + 4) * 10, 10, 7));
    run();
    REQUIRE(out->demands.size() == 2 + w);
    CHECK(out->demands[1 + w] == std::make_pair(std::uint64_t{50}, std::uint64_t{350}));
  }
}

SCENARIO_METHOD(fixture, "a shard gives credit back once half of its byte window is processed",
                "[actors][shard]") {
  credit_shard c{*this, 100, 1000};
  REQUIRE(c.started);
  auto& out = c.out;
  REQUIRE(out->demands.size() == 1);
  // 300 bytes of 1,000: under half of the bytes (and of the records); 600 bytes: half passed.
  anon_send(out->shard, records_atom::value, sized_batch(0, 1, 300));
  run();
  CHECK(out->demands.size() == 1);
  anon_send(out->shard, records_atom::value, sized_batch(1, 1, 300));
  run();
  REQUIRE(out->demands.size() == 2);
  CHECK(out->demands[1] == std::make_pair(std::uint64_t{2}, std::uint64_t{600}));
  // A record larger than the whole byte window (the feeder lets one through alone) goes back at
  // once: the feeder, its byte credit below zero, waits for exactly that.
  anon_send(out->shard, records_atom::value, sized_batch(2, 1, 5000));
  run();
  REQUIRE(out->demands.size() == 3);
  CHECK(out->demands[2] == std::make_pair(std::uint64_t{1}, std::uint64_t{5000}));
}

namespace {

// A checkpoint sink whose answers the test gives: loads are answered from `store` unless
// `hold_loads`, saves are held (in order) until the test delivers to them.
struct manual_sink {
  std::shared_ptr<memory_checkpoint_store> store = std::make_shared<memory_checkpoint_store>();
  bool hold_loads = false;
  std::vector<caf::response_promise> loads;
  struct save {
    caf::response_promise rp;
    checkpoint cp;
  };
  std::vector<save> saves;
};

caf::actor spawn_manual_sink(deterministic_fixture& fx, std::shared_ptr<manual_sink> m) {
  return fx.spawn_fn([m](caf::event_based_actor* self) -> caf::behavior {
    return {
      [self, m](load_atom, const shard_id& id) -> caf::result<stored_checkpoint> {
        if (!m->hold_loads)
          return m->store->load(id);
        m->loads.push_back(self->make_response_promise());
        return m->loads.back();
      },
      [self, m](save_atom, const shard_id&, std::uint64_t, const checkpoint& cp)
        -> caf::result<caf::ok_atom> {
        m->saves.push_back({self->make_response_promise(), cp});
        return m->saves.back().rp;
      },
      // The test answers save `i` with ok (a promise is delivered from the actor that holds it).
      [m](open_atom, std::uint64_t i) { m->saves.at(i).rp.deliver(caf::ok_atom::value); },
    };
  });
}

std::optional<std::uint64_t> position_of(const checkpoint& cp) {
  if (!cp.position)
    return std::nullopt;
  return cp.position->base.to_uint64();
}

// A shard under a credit stand-in over a manual sink, with a 2 s checkpoint timeout, retries from
// 100 ms and heartbeats every second; the stand-in is stopped when the scenario ends.
struct timed_shard {
  std::shared_ptr<manual_sink> sink = std::make_shared<manual_sink>();
  std::shared_ptr<credit_log> out = std::make_shared<credit_log>();
  std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();
  caf::actor stand_in;
  caf::actor sink_hdl;
  caf::actor watcher; // held: an actor nobody holds is gone before its down message comes
  caf::error down; // the shard's exit reason, once it is gone
  bool gone = false;

  timed_shard(fixture& fx, bool hold_loads, std::chrono::milliseconds heartbeat = 1s) {
    sink->hold_loads = hold_loads;
    shard_config cfg = fx.group("t", 0, false).shard;
    cfg.heartbeat_interval = heartbeat;
    cfg.checkpoint_timeout = 2s;
    cfg.retry_min = 100ms;
    cfg.log = [l = lines](log_level level, std::string_view text) {
      if (level == log_level::warning)
        l->emplace_back(text);
    };
    sink_hdl = spawn_manual_sink(fx, sink);
    stand_in = spawn_credit_feeder(fx, out, cfg, sink_hdl);
    fx.run();
    watcher = fx.spawn_fn([this, shard = out->shard](caf::event_based_actor* self) -> caf::behavior {
      self->monitor(shard);
      self->set_down_handler([this, self](caf::down_msg& msg) {
        down = msg.reason;
        gone = true;
        self->quit();
      });
      self->send(shard, start_atom::value);
      return {[](caf::ok_atom) {}};
    });
    fx.run();
  }
  ~timed_shard() {
    caf::anon_send_exit(stand_in, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sink_hdl, caf::exit_reason::user_shutdown);
  }
  timed_shard(const timed_shard&) = delete;
  timed_shard& operator=(const timed_shard&) = delete;
};

} // namespace

SCENARIO_METHOD(fixture, "a checkpoint load that never answers ends the shard after its timeout",
                "[actors][shard]") {
  // With a heartbeat (its wake-up checks the load's deadline) and without one.
  for (auto heartbeat : {1000ms, 0ms}) {
    timed_shard t{*this, true, heartbeat};
    REQUIRE(t.sink->loads.size() == 1);
    advance(1999ms); // a heartbeat came and went: a shard still loading has nothing to beat
    CHECK_FALSE(t.gone);
    advance(1ms);
    REQUIRE(t.gone);
    CHECK(t.down == caf::sec::request_timeout); // as a CAF request timeout ended it
    CHECK(t.out->demands.empty());              // it never attached
  }
}

SCENARIO_METHOD(fixture,
                "a checkpoint save that never answers counts as failed after its timeout and is "
                "retried, and its late answer is not taken for the retry",
                "[actors][shard]") {
  timed_shard t{*this, false};
  REQUIRE(t.out->demands.size() == 1); // started
  anon_send(t.out->shard, records_atom::value, sized_batch(0, 10, 7));
  run();
  REQUIRE(t.sink->saves.size() == 1);
  CHECK(position_of(t.sink->saves[0].cp) == 9u);
  auto stats_now = [&] {
    auto r = ask<shard_stats>(t.out->shard, stats_atom::value);
    REQUIRE(r.value);
    return *r.value;
  };
  advance(1999ms);
  CHECK(stats_now().sink_failures == 0);
  advance(1ms);
  CHECK(stats_now().sink_failures == 1);
  REQUIRE(t.lines->size() == 1);
  CHECK_THAT(t.lines->front(), Catch::Contains("t: checkpoint save failed")
                                 && Catch::Contains("retry 1 in 100 ms"));
  anon_send(t.out->shard, records_atom::value, sized_batch(10, 10, 7));
  run();
  CHECK(t.sink->saves.size() == 1); // backing off: the newer position waits
  advance(100ms);
  REQUIRE(t.sink->saves.size() == 2);
  CHECK(position_of(t.sink->saves[1].cp) == 19u); // the newest position, not the overdue one
  // The overdue save's answer comes late: it is not the answer to the save in flight.
  anon_send(t.sink_hdl, open_atom::value, std::uint64_t{0});
  run();
  auto s = stats_now();
  CHECK(s.acked == 0);
  CHECK_FALSE(s.last_acked);
  anon_send(t.sink_hdl, open_atom::value, std::uint64_t{1});
  run();
  s = stats_now();
  CHECK(s.acked == 1);
  REQUIRE(s.last_acked);
  CHECK(s.last_acked->base == sequence_base{19});
  CHECK(s.sink_failures == 1);
  CHECK(t.gone == false);
}
