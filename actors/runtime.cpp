#include <shardflow/actors/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/checkpoint_sink.hpp>
#include <shardflow/core/record_source.hpp>

namespace shardflow {

// -- outcome and registry ------------------------------------------------------------------------

namespace {

// OTP's `shutdown` is clean; `{shutdown, Why}` (a context) is how a supervisor reports giving up.
bool clean_reason(const caf::error& x) {
  return !x || x == caf::exit_reason::normal
         || (x == caf::exit_reason::user_shutdown && x.context().empty());
}

} // namespace

bool runtime_outcome::clean() const {
  if (!ended || !clean_reason(reason))
    return false;
  for (auto& x : shards)
    if (x.outcome != shard_outcome::ended && x.outcome != shard_outcome::stopped)
      return false;
  return true;
}

/// The part of a runtime that the facade reads from host threads while the front actor writes it.
struct runtime_registry {
  struct row {
    shard_id id;
    std::shared_ptr<shard_meters> meters;
    std::string reason; // gave_up: why
  };

  caf::actor root;
  caf::actor sink;
  bool own_sink = false;

  mutable std::mutex mtx;
  std::vector<row> rows; // in start order
  bool ended = false;
  caf::error reason;

  runtime_outcome snapshot() const {
    std::lock_guard<std::mutex> guard{mtx};
    runtime_outcome result;
    result.ended = ended;
    result.reason = reason;
    for (auto& r : rows)
      result.shards.push_back({r.id, r.meters->outcome.load(std::memory_order_relaxed), r.reason});
    return result;
  }

  std::shared_ptr<shard_meters> find(const shard_id& id) const {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& r : rows)
      if (r.id == id)
        return r.meters;
    return nullptr;
  }
};

namespace {

// -- the intake child of a finite root -----------------------------------------------------------

constexpr const char* intake_id = "shardflow-intake";

// Keeps a finite runtime's root from shutting down while shards are still being added: a significant
// child that ends by itself (normally) when the host says the last shard is in (seal).
caf::behavior intake(caf::event_based_actor* self, caf::actor sup) {
  follow_supervisor(self, sup);
  return {
    [](start_atom) { return caf::ok_atom::value; },
    [self](end_atom) { self->quit(); },
  };
}

child_spec intake_child() {
  child_spec spec;
  spec.id = intake_id;
  spec.restart = restart_type::transient;
  spec.significant = true;
  spec.start = [](start_context& ctx) -> caf::expected<caf::actor> {
    return ctx.self->spawn(intake, caf::actor_cast<caf::actor>(ctx.self));
  };
  return spec;
}

// -- the front actor -----------------------------------------------------------------------------

enum class role : std::uint8_t { group, feeder, shard };

/// What the front actor knows about one shard.
struct shard_entry {
  caf::actor group;
  caf::actor feeder;
  caf::actor shard;
  std::shared_ptr<shard_meters> meters;
  /// Set when a stop of the shard begins (the shard's `shard_config::halt`).
  halt_flag halt;
  bool finite = false;
  bool stop_requested = false;
  /// The last abnormal exit of the shard's group while no newer group has been seen.
  caf::error failure;
  /// The last actors of this shard seen going down (a which_children answer may still name them).
  std::vector<caf::actor_id> gone;

  bool is_gone(const caf::actor& hdl) const {
    return std::find(gone.begin(), gone.end(), hdl.id()) != gone.end();
  }

  void went(caf::actor_id x) {
    if (gone.size() >= 16)
      gone.erase(gone.begin());
    gone.push_back(x);
  }
};

struct front_state {
  runtime_config cfg;
  std::shared_ptr<runtime_registry> reg;
  std::map<shard_id, shard_entry> entries;
  /// Handles the front monitors, by actor id: whose and what.
  std::map<caf::actor_id, std::pair<shard_id, role>> watched;
  std::vector<caf::response_promise> waiters;
  bool sealed = false;
  bool shutting_down = false;
  bool root_down = false;
  caf::error reason;
  /// Set when the front actor was told to exit before the root was down.
  std::optional<caf::error> exiting;
};

using front_actor = caf::stateful_actor<front_state>;

shard_outcome outcome_of(const shard_entry& e) {
  return e.meters->outcome.load(std::memory_order_relaxed);
}

// Returns whether the shard checkpointed its end (the sink acknowledged the end marker).
bool ended_at_end(const shard_entry& e) {
  return e.meters->acked_end.load(std::memory_order_relaxed);
}

// Sets the outcome unless the shard already wrote one.
void settle(shard_entry& e, shard_outcome x) {
  auto expected = shard_outcome::running;
  e.meters->outcome.compare_exchange_strong(expected, x, std::memory_order_relaxed);
}

// A line of the root about its groups: "child ID failed: code: ..." reads "ID: failed (code): ...",
// without the words that repeat the shard (see tidy_reason).
std::string root_line(const std::string& what) {
  constexpr std::string_view child = "child ";
  auto text = what;
  if (text.compare(0, child.size(), child) == 0) {
    auto end = text.find(' ', child.size());
    auto id = text.substr(child.size(), end - child.size());
    text = tidy_reason(text.substr(child.size()), id);
    auto code_at = text.find(" failed: ");
    if (code_at != std::string::npos) {
      auto rest = text.substr(code_at + 9);
      auto colon = rest.find(": ");
      if (colon != std::string::npos && rest.find(' ') > colon)
        text = fmt::format("{}: failed ({}): {}", text.substr(0, code_at), rest.substr(0, colon),
                           rest.substr(colon + 2));
    }
    return text;
  }
  text = tidy_reason(std::move(text), shard_id{});
  constexpr std::string_view giving_up = "giving up: ";
  if (text.compare(0, giving_up.size(), giving_up) == 0)
    return "the runtime gives up: " + text.substr(giving_up.size());
  return text;
}

void give_up(front_actor* self, const shard_id& id, shard_entry& e, const caf::error& why) {
  if (ended_at_end(
        e)) { // a later incarnation checkpointed the end: whatever failed before, it ended
    e.failure = caf::error{};
    settle(e, shard_outcome::ended);
    return;
  }
  auto text = tidy_reason(text_of(why), id);
  e.meters->outcome.store(shard_outcome::gave_up, std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard{self->state.reg->mtx};
  for (auto& r : self->state.reg->rows)
    if (r.id == id)
      r.reason = text;
}

// Returns the error for a request about shard `id`, or none when the shard can take it.
caf::error refuse(front_actor* self, const shard_id& id) {
  auto& st = self->state;
  if (st.root_down)
    return make_error(errc::runtime_ended,
                      fmt::format("shard {}: the runtime has ended ({})", id, text_of(st.reason)));
  if (st.shutting_down)
    return make_error(errc::shutting_down,
                      fmt::format("shard {}: the runtime is shutting down", id));
  auto i = st.entries.find(id);
  if (i == st.entries.end())
    return make_error(errc::unknown_shard, fmt::format("the runtime has no shard {}", id));
  if (auto x = outcome_of(i->second); x != shard_outcome::running)
    return make_error(errc::shard_ended,
                      fmt::format("shard {} {}", id,
                                  x == shard_outcome::ended     ? "has ended"
                                  : x == shard_outcome::stopped ? "was stopped"
                                                                : "has given up"));
  return {};
}

// Turns the error of a request to a shard's actor into one that names the problem.
caf::error translate(front_actor* self, const shard_id& id, caf::error err) {
  if (code_of(err) != errc::none || err != caf::sec::request_receiver_down)
    return err;
  if (auto why = refuse(self, id))
    return why;
  return make_error(errc::restarting,
                    fmt::format("shard {} is restarting; ask again once it runs", id));
}

void watch(front_actor* self, const shard_id& id, role r, const caf::actor& hdl) {
  self->monitor(hdl);
  self->state.watched[hdl.id()] = {id, r};
}

caf::actor& slot(shard_entry& e, role r) {
  switch (r) {
    case role::group:
      return e.group;
    case role::feeder:
      return e.feeder;
    default:
      return e.shard;
  }
}

using actor_fn = std::function<void(const caf::actor&)>;
using error_fn = std::function<void(caf::error)>;

// Looks up the group's feeder and shard (one which_children request) and caches them.
void resolve_members(front_actor* self, const shard_id& id, role r, actor_fn ok, error_fn fail) {
  auto group = self->state.entries.at(id).group;
  self->request(group, caf::infinite, which_children_atom::value)
    .then(
      [=](std::vector<child_info>& kids) {
        auto i = self->state.entries.find(id);
        if (i == self->state.entries.end() || i->second.group != group)
          return fail(translate(self, id, caf::sec::request_receiver_down));
        for (auto& k : kids) {
          if (!k.handle || i->second.is_gone(k.handle))
            continue;
          if (k.id != feeder_child_id && k.id != shard_child_id)
            continue;
          auto kr = k.id == feeder_child_id ? role::feeder : role::shard;
          if (slot(i->second, kr) != k.handle) {
            slot(i->second, kr) = k.handle;
            watch(self, id, kr, k.handle);
          }
        }
        if (auto& hdl = slot(i->second, r))
          return ok(hdl);
        fail(translate(self, id, caf::sec::request_receiver_down));
      },
      [=](caf::error& err) { fail(translate(self, id, std::move(err))); });
}

// Records a new incarnation of the shard's group, if `kids` (the root's children) has one.
bool adopt_group(front_actor* self, const shard_id& id, const std::vector<child_info>& kids) {
  auto i = self->state.entries.find(id);
  if (i == self->state.entries.end())
    return false;
  for (auto& k : kids) {
    if (k.id != id || !k.handle || i->second.is_gone(k.handle))
      continue;
    if (i->second.group != k.handle) {
      i->second.group = k.handle;
      i->second.failure = caf::error{};
      watch(self, id, role::group, k.handle);
    }
    return true;
  }
  return false;
}

// Calls `ok` with the shard's actor in role `r` (cached, or looked up: at most two requests).
void with_member(front_actor* self, const shard_id& id, role r, actor_fn ok, error_fn fail) {
  auto& e = self->state.entries.at(id);
  if (auto& hdl = slot(e, r))
    return ok(hdl);
  if (e.group)
    return resolve_members(self, id, r, std::move(ok), std::move(fail));
  self->request(self->state.reg->root, caf::infinite, which_children_atom::value)
    .then(
      [=](std::vector<child_info>& kids) {
        if (!adopt_group(self, id, kids))
          return fail(translate(self, id, caf::sec::request_receiver_down));
        resolve_members(self, id, r, ok, fail);
      },
      [=](caf::error& err) { fail(translate(self, id, std::move(err))); });
}

// After an abnormal exit of a shard's group: looks for its next incarnation every 100 ms; a group
// that is not being restarted (absent, or not running for its start timeout plus 5 s) has given up
// for good.
void look_for_group(front_actor* self, const shard_id& id, int tries) {
  self->request(self->state.reg->root, caf::infinite, which_children_atom::value)
    .then(
      [=](std::vector<child_info>& kids) {
        auto i = self->state.entries.find(id);
        if (self->state.root_down || i == self->state.entries.end() || !i->second.failure
            || adopt_group(self, id, kids))
          return;
        if (ended_at_end(i->second)) // a new group ended before it was seen: nothing gave up
          return give_up(self, id, i->second, i->second.failure);
        auto row = std::find_if(kids.begin(), kids.end(),
                                [&](const child_info& k) { return k.id == id; });
        // A group being started shows as neither running nor restarting: wait out its start.
        const auto limit = self->state.cfg.start_timeout / std::chrono::milliseconds(100) + 50;
        if (row == kids.end() || (row->status != child_status::restarting && tries >= limit))
          return give_up(self, id, i->second, i->second.failure);
        self->delayed_send(self, std::chrono::milliseconds(100), retry_atom::value, id, tries + 1);
      },
      [](caf::error&) {}); // the root is gone: its down message settles every shard
}

void end_if_done(front_actor* self);

void on_member_down(front_actor* self, const shard_id& id, role r, const caf::down_msg& msg) {
  auto i = self->state.entries.find(id);
  if (i == self->state.entries.end())
    return;
  auto& e = i->second;
  if (slot(e, r).address() != msg.source)
    return; // an actor of an earlier shard of the same id, or already replaced
  slot(e, r) = caf::actor{};
  if (r != role::group)
    return;
  e.feeder = caf::actor{};
  e.shard = caf::actor{};
  if (clean_reason(msg.reason)) {
    // Ended only when its end is checkpointed. A group that ends cleanly without that was stopped
    // (stop_shard, shutdown) or stopped by a root that is giving up: the root's down decides then.
    if (ended_at_end(e))
      settle(e, shard_outcome::ended);
    else if (e.stop_requested || self->state.shutting_down)
      settle(e, shard_outcome::stopped);
    return;
  }
  e.failure = msg.reason;
  if (!self->state.cfg.restart_groups) { // nothing starts it again: it gave up, the others go on
    give_up(self, id, e, e.failure);
    end_if_done(self);
    return;
  }
  self->delayed_send(self, std::chrono::milliseconds(100), retry_atom::value, id, 0);
}

void on_exit(front_actor* self, const caf::error& reason);

// The root is down: every shard's outcome is now final.
void on_root_down(front_actor* self, const caf::error& reason) {
  auto& st = self->state;
  st.root_down = true;
  st.reason = reason;
  for (auto& [id, e] : st.entries) {
    // A group that failed just before a clean shutdown was being restarted, not given up.
    if (e.failure && !(st.shutting_down && clean_reason(reason)))
      give_up(self, id, e, e.failure);
    else if (outcome_of(e) == shard_outcome::running && !clean_reason(reason))
      give_up(self, id, e, reason);
    else
      settle(e, ended_at_end(e) ? shard_outcome::ended : shard_outcome::stopped);
  }
  {
    std::lock_guard<std::mutex> guard{st.reg->mtx};
    st.reg->ended = true;
    st.reg->reason = reason;
  }
  if (!clean_reason(reason) && st.cfg.log)
    st.cfg.log(log_level::error, fmt::format("the runtime ended: {}", root_line(text_of(reason))));
  auto outcome = st.reg->snapshot();
  for (auto& rp : st.waiters)
    rp.deliver(outcome);
  st.waiters.clear();
  if (st.exiting)
    on_exit(self, *st.exiting);
}

void on_down(front_actor* self, const caf::down_msg& msg) {
  auto& st = self->state;
  if (msg.source == st.reg->root.address())
    return on_root_down(self, msg.reason);
  auto i = st.watched.find(msg.source.id());
  if (i == st.watched.end())
    return;
  auto [id, r] = i->second;
  st.watched.erase(i);
  if (auto e = st.entries.find(id); e != st.entries.end())
    e->second.went(msg.source.id());
  on_member_down(self, id, r, msg);
}

// Completes a shard's config with the runtime's defaults; returns an error when it cannot run.
caf::error complete(front_actor* self, shard_group_config& cfg,
                    const std::shared_ptr<shard_meters>& meters) {
  if (!cfg.shard.make_flusher)
    return make_error(errc::bad_child_spec,
                      fmt::format("shard {} has no flusher factory", cfg.shard.id));
  if (!cfg.sink)
    cfg.sink = self->state.reg->sink;
  if (!cfg.source) {
    // One buffer for the shard's life: when the group restarts (its feeder with it), the next
    // feeder replays what the last one held and nothing pushed is lost.
    auto buffer = std::make_shared<replay_buffer>();
    cfg.source = [buffer] { return buffer; };
  }
  if (!cfg.report)
    cfg.report = [log = self->state.cfg.log, id = cfg.shard.id](const std::string& what) {
      log(log_level::warning, group_report_line(id, what));
    };
  cfg.shard.meters = meters;
  cfg.shard.halt = std::make_shared<std::atomic<bool>>(false);
  cfg.feeder.halt = cfg.shard.halt;
  if (!cfg.shard.log)
    cfg.shard.log = self->state.cfg.log;
  return {};
}

// What the registry held for a shard id before a new start (restored when that start fails).
struct earlier_shard {
  std::optional<shard_entry> entry;
  std::optional<runtime_registry::row> row;
  std::size_t index = std::numeric_limits<std::size_t>::max(); // the row's place in start order
};

// Takes shard `id` out of the registry and returns what it held.
earlier_shard delist(front_actor* self, const shard_id& id) {
  auto& st = self->state;
  earlier_shard result;
  if (auto i = st.entries.find(id); i != st.entries.end()) {
    result.entry = std::move(i->second);
    st.entries.erase(i);
  }
  std::lock_guard<std::mutex> guard{st.reg->mtx};
  auto& rows = st.reg->rows;
  auto i = std::find_if(rows.begin(), rows.end(), [&](auto& r) { return r.id == id; });
  if (i != rows.end()) {
    result.row = std::move(*i);
    result.index = static_cast<std::size_t>(i - rows.begin());
    rows.erase(i);
  }
  return result;
}

// Puts `x` (a shard's entry and row) into the registry, the row back at its place in start order
// (a new one at the end).
void enlist(front_actor* self, const shard_id& id, earlier_shard x) {
  auto& st = self->state;
  if (x.entry)
    st.entries[id] = std::move(*x.entry);
  if (x.row) {
    std::lock_guard<std::mutex> guard{st.reg->mtx};
    auto& rows = st.reg->rows;
    rows.insert(rows.begin() + static_cast<std::ptrdiff_t>(std::min(x.index, rows.size())),
                std::move(*x.row));
  }
}

// Why a shard's source factory threw, if it did (written by the feeder, read by the front actor
// once the start has failed: the failure reaches it through the tree's messages).
struct source_failure {
  errc code = errc::none;
  std::string text;
  std::atomic<bool> seen{false}; // the first error is in (one allocation with the rest)
};

// Makes the shard's feeder keep what its source threw, so that a failed start reports the source's
// own error. The first one counts: a later incarnation's does not change a start's answer.
std::shared_ptr<source_failure> watch_source(shard_group_config& cfg) {
  auto out = std::make_shared<source_failure>();
  cfg.feeder.on_source_error
    = [out, next = std::move(cfg.feeder.on_source_error)](const caf::error& why) {
        if (!out->seen.exchange(true)) {
          const auto code = code_of(why);
          out->code = code != errc::none ? code : errc::start_failed;
          out->text = text_of(why);
        }
        if (next)
          next(why);
      };
  return out;
}

caf::result<caf::ok_atom> start_shard(front_actor* self, shard_group_config& cfg) {
  auto& st = self->state;
  const auto id = cfg.shard.id;
  if (st.root_down || st.shutting_down)
    return refuse(self, id);
  if (auto i = st.entries.find(id);
      i != st.entries.end() && outcome_of(i->second) == shard_outcome::running)
    return make_error(errc::already_started, fmt::format("shard {} is already running", id));
  if (cfg.finite && !st.cfg.finite) // the root's supervisor would refuse it, in its own words
    return make_error(errc::bad_child_spec,
                      fmt::format("shard {} is finite (shard_group_config::finite) but the runtime "
                                  "is not (runtime_config::finite): a runtime that never ends by "
                                  "itself takes shards whose input does not end",
                                  id));
  auto meters = std::make_shared<shard_meters>();
  if (auto err = complete(self, cfg, meters))
    return err;
  // A stopped or ended shard of the same id is replaced; it comes back if this start fails.
  auto earlier = std::make_shared<earlier_shard>(delist(self, id));
  earlier_shard fresh;
  fresh.entry.emplace();
  fresh.entry->meters = meters;
  fresh.entry->halt = cfg.shard.halt;
  fresh.entry->finite = cfg.finite;
  fresh.row = runtime_registry::row{id, meters, {}};
  enlist(self, id, std::move(fresh));
  auto source_failure = watch_source(cfg);
  auto spec = shard_group(std::move(cfg));
  if (!st.cfg.restart_groups)
    spec.restart = restart_type::temporary; // a group that gave up is final (OTP's temporary)
  auto rp = self->make_response_promise<caf::ok_atom>();
  self->request(st.reg->root, caf::infinite, start_child_atom::value, std::move(spec))
    .then(
      [=](caf::actor& group) mutable {
        auto i = self->state.entries.find(id);
        if (i != self->state.entries.end() && !i->second.group) {
          i->second.group = group;
          watch(self, id, role::group, group);
        }
        rp.deliver(caf::ok_atom::value);
      },
      [=](caf::error& err) mutable {
        auto why = source_failure->code != errc::none
                     ? make_error(source_failure->code, fmt::format("shard {} cannot start: {}", id,
                                                                    source_failure->text))
                     : translate(self, id, std::move(err));
        delist(self, id);
        enlist(self, id, std::move(*earlier));
        rp.deliver(std::move(why));
      });
  return rp;
}

// Runs `then(actor)` on the shard's actor in role `r` and delivers what `then` answers.
template <class T, class F>
caf::result<T> on_member(front_actor* self, const shard_id& id, role r, F then) {
  if (auto err = refuse(self, id))
    return err;
  auto rp = self->make_response_promise<T>();
  with_member(
    self, id, r, [=](const caf::actor& hdl) mutable { then(hdl, rp); },
    [=](caf::error err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

caf::result<caf::ok_atom> push(front_actor* self, const shard_id& id, record_batch& batch) {
  return on_member<caf::ok_atom>(
    self, id, role::feeder,
    [self, id, batch = std::move(batch)](const caf::actor& feeder, auto& rp) mutable {
      self->request(feeder, caf::infinite, push_atom::value, std::move(batch))
        .then([rp](caf::ok_atom) mutable { rp.deliver(caf::ok_atom::value); },
              [=](caf::error& err) mutable { rp.deliver(translate(self, id, std::move(err))); });
    });
}

// The request fails (and the host may ask again) when the feeder dies before it took the end.
caf::result<caf::ok_atom> end_input(front_actor* self, const shard_id& id) {
  return on_member<caf::ok_atom>(
    self, id, role::feeder, [self, id](const caf::actor& feeder, auto& rp) {
      self->request(feeder, caf::infinite, end_atom::value)
        .then([rp](caf::ok_atom) mutable { rp.deliver(caf::ok_atom::value); },
              [=](caf::error& err) mutable { rp.deliver(translate(self, id, std::move(err))); });
    });
}

caf::result<shard_stats> stats(front_actor* self, const shard_id& id) {
  return on_member<shard_stats>(
    self, id, role::shard, [self, id](const caf::actor& shard, auto& rp) {
      self->request(shard, caf::infinite, stats_atom::value)
        .then([rp](shard_stats& x) mutable { rp.deliver(std::move(x)); },
              [=](caf::error& err) mutable { rp.deliver(translate(self, id, std::move(err))); });
    });
}

// Whether a shard may still process records: not stopped, ended or given up, and running, its group
// alive (a rest_for_one restart shows `stopped` meanwhile) or being restarted by the root.
bool may_still_run(const shard_entry& e) {
  const auto x = outcome_of(e);
  if (e.stop_requested || x == shard_outcome::ended || x == shard_outcome::gave_up)
    return false;
  return x == shard_outcome::running || e.group || e.failure;
}

// A sealed finite runtime whose shards have all ended, stopped or given up ends: the root's auto
// shutdown only looks when a child exits by itself, not when the host stopped the last one.
void end_if_done(front_actor* self) {
  auto& st = self->state;
  if (!st.cfg.finite || !st.sealed || st.shutting_down || st.root_down)
    return;
  for (auto& [id, e] : st.entries)
    if (may_still_run(e))
      return;
  st.shutting_down = true;
  self->send_exit(st.reg->root, caf::exit_reason::user_shutdown);
}

// Stops the shard's feeding at once: the stop itself reaches it later, through its supervisor.
void halt(shard_entry& e) {
  if (e.halt)
    e.halt->store(true, std::memory_order_relaxed);
}

// Shuts the tree down (ordered, final checkpoints included), every shard's feeding stopped first.
void shut_down(front_actor* self) {
  auto& st = self->state;
  if (st.root_down || st.shutting_down)
    return;
  st.shutting_down = true;
  for (auto& [id, e] : st.entries)
    halt(e);
  self->send_exit(st.reg->root, caf::exit_reason::user_shutdown);
}

caf::result<caf::ok_atom> stop_shard(front_actor* self, const shard_id& id) {
  if (auto err = refuse(self, id))
    return err;
  auto& root = self->state.reg->root;
  auto& e = self->state.entries[id];
  e.stop_requested = true;
  halt(e);
  auto rp = self->make_response_promise<caf::ok_atom>();
  auto fail = [=](caf::error& err) mutable {
    if (code_of(err) == errc::not_found) // the group ended by itself meanwhile
      err = make_error(errc::shard_ended, fmt::format("shard {} has ended", id));
    rp.deliver(translate(self, id, std::move(err)));
  };
  // Once terminated, the shard is stopped whatever the delete answers: the delete only forgets
  // its spec, and the root may be ending by itself meanwhile (the others all ended).
  auto stopped = [=]() mutable {
    if (auto i = self->state.entries.find(id); i != self->state.entries.end())
      settle(i->second, shard_outcome::stopped);
    end_if_done(self);
    rp.deliver(caf::ok_atom::value);
  };
  self->request(root, caf::infinite, terminate_child_atom::value, id)
    .then(
      [=](caf::ok_atom) mutable {
        self->request(root, caf::infinite, delete_child_atom::value, id)
          .then([=](caf::ok_atom) mutable { stopped(); }, [=](caf::error&) mutable { stopped(); });
      },
      fail);
  return rp;
}

void seal(front_actor* self) {
  auto& st = self->state;
  if (st.sealed || st.root_down)
    return;
  st.sealed = true;
  self->request(st.reg->root, caf::infinite, which_children_atom::value)
    .then(
      [self](std::vector<child_info>& kids) {
        for (auto& c : kids)
          if (c.id == intake_id && c.handle)
            self->send(c.handle, end_atom::value);
      },
      [](caf::error&) {});
}

caf::result<runtime_outcome> await_end(front_actor* self) {
  auto& st = self->state;
  if (st.root_down)
    return st.reg->snapshot();
  seal(self);
  auto rp = self->make_response_promise<runtime_outcome>();
  st.waiters.push_back(rp);
  return rp;
}

// Ends the front actor: once the root is down (after its ordered shutdown, which still needs the
// sink), the front actor quits and takes the sink it made with it.
void on_exit(front_actor* self, const caf::error& reason) {
  auto& st = self->state;
  if (!st.root_down) {
    st.exiting = reason;
    shut_down(self);
    return; // on_root_down calls again
  }
  if (st.reg->own_sink)
    self->send_exit(st.reg->sink, caf::exit_reason::user_shutdown);
  self->quit(reason);
}

caf::behavior front(front_actor* self, runtime_config cfg, std::shared_ptr<runtime_registry> reg) {
  self->state.cfg = std::move(cfg);
  self->state.reg = reg;
  self->monitor(reg->root);
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->set_exit_handler([self](caf::exit_msg& msg) { on_exit(self, msg.reason); });
  return {
    [self](start_child_atom, shard_group_config& g) { return start_shard(self, g); },
    [self](push_atom, const shard_id& id, record_batch& batch) { return push(self, id, batch); },
    [self](push_atom, const shard_id& id) {
      return on_member<caf::actor>(self, id, role::feeder,
                                   [](const caf::actor& feeder, auto& rp) { rp.deliver(feeder); });
    },
    [self](end_atom, const shard_id& id) { return end_input(self, id); },
    [self](stats_atom, const shard_id& id) { return stats(self, id); },
    [self](terminate_child_atom, const shard_id& id) { return stop_shard(self, id); },
    [self](seal_atom) {
      seal(self);
      return caf::ok_atom::value;
    },
    [self](await_atom) { return await_end(self); },
    [self](shutdown_atom) {
      shut_down(self);
      return await_end(self);
    },
    [self](retry_atom, const shard_id& id, int tries) { look_for_group(self, id, tries); },
  };
}

caf::expected<caf::actor> spawn_front(caf::actor_system& sys, runtime_config cfg,
                                      const std::shared_ptr<runtime_registry>& reg) {
  if (!cfg.log)
    cfg.log = stderr_log("shardflow");
  reg->own_sink = !cfg.sink;
  reg->sink = cfg.sink ? cfg.sink
                       : spawn_checkpoint_sink(sys, std::make_shared<memory_checkpoint_store>());
  supervisor_flags flags;
  flags.how = strategy::one_for_one;
  flags.intensity = cfg.intensity;
  flags.period = cfg.period;
  flags.shutdown_mode = cfg.finite ? auto_shutdown::all_significant : auto_shutdown::never;
  flags.start_timeout = cfg.start_timeout;
  flags.report = [log = cfg.log](const std::string& what) {
    log(log_level::warning, root_line(what));
  };
  std::vector<child_spec> children;
  if (cfg.finite)
    children.push_back(intake_child());
  auto root = spawn_supervisor(sys, flags, std::move(children));
  if (!root) {
    if (reg->own_sink)
      caf::anon_send_exit(reg->sink, caf::exit_reason::user_shutdown);
    return root.error();
  }
  reg->root = *root;
  return sys.spawn(front, std::move(cfg), reg);
}

} // namespace

caf::expected<caf::actor> spawn_runtime(caf::actor_system& sys, runtime_config cfg) {
  return spawn_front(sys, std::move(cfg), std::make_shared<runtime_registry>());
}

// -- the blocking facade -------------------------------------------------------------------------

caf::expected<std::unique_ptr<runtime>> runtime::start(caf::actor_system& sys, runtime_config cfg) {
  auto reg = std::make_shared<runtime_registry>();
  auto front = spawn_front(sys, std::move(cfg), reg);
  if (!front)
    return front.error();
  return std::unique_ptr<runtime>{new runtime(sys, *front, std::move(reg))};
}

runtime::runtime(caf::actor_system& sys, caf::actor front, std::shared_ptr<runtime_registry> reg)
  : self_(sys), front_(std::move(front)), root_(reg->root), sink_(reg->sink), reg_(std::move(reg)) {
  self_->monitor(root_);
}

runtime::~runtime() {
  shutdown();
  self_->send_exit(front_, caf::exit_reason::user_shutdown);
  if (sink_)
    self_->send_exit(sink_, caf::exit_reason::user_shutdown);
}

template <class T, class... Ts>
caf::expected<T> runtime::call(Ts&&... xs) {
  caf::expected<T> result{caf::error{}};
  self_->request(front_, caf::infinite, std::forward<Ts>(xs)...)
    .receive([&](T& x) { result = std::move(x); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

caf::error runtime::start_shard(shard_group_config cfg) {
  auto r = call<caf::ok_atom>(start_child_atom::value, std::move(cfg));
  return r ? caf::error{} : r.error();
}

caf::error runtime::push(const shard_id& id, record_batch batch) {
  // Straight to the feeder the front actor named last (a batch is a shared slice: copies are cheap).
  auto i = feeders_.find(id);
  if (i != feeders_.end()
      && i->second.meters->outcome.load(std::memory_order_relaxed) != shard_outcome::running)
    feeders_.erase(i); // its feeder may outlive it a moment: the front actor answers shard_ended
  else if (i != feeders_.end() && !finished_) {
    caf::error err;
    self_->request(i->second.feeder, caf::infinite, push_atom::value, batch)
      .receive([](caf::ok_atom) {}, [&](caf::error& x) { err = std::move(x); });
    if (!err)
      return {};
    feeders_.erase(i);
    if (err != caf::sec::request_receiver_down)
      return err; // e.g. restarting: the feeder stopped while the push waited; push again
  }
  // Through the front actor, which finds the current feeder or names the problem.
  auto r = call<caf::ok_atom>(push_atom::value, id, batch);
  if (!r)
    return r.error();
  if (auto feeder = call<caf::actor>(push_atom::value, id))
    if (auto m = reg_->find(id))
      feeders_[id] = {std::move(*feeder), std::move(m)};
  return {};
}

caf::error runtime::end(const shard_id& id) {
  auto r = call<caf::ok_atom>(end_atom::value, id);
  return r ? caf::error{} : r.error();
}

caf::expected<shard_stats> runtime::stats(const shard_id& id) {
  return call<shard_stats>(stats_atom::value, id);
}

caf::error runtime::stop_shard(const shard_id& id) {
  feeders_.erase(id);
  auto r = call<caf::ok_atom>(terminate_child_atom::value, id);
  return r ? caf::error{} : r.error();
}

void runtime::seal() {
  call<caf::ok_atom>(seal_atom::value);
}

runtime_outcome runtime::await(caf::timespan timeout) {
  if (!finished_) {
    seal();
    self_->receive([&](caf::down_msg& msg) { finished_ = msg.source == root_.address(); },
                   caf::after(timeout) >> [] {});
    if (!finished_)
      return reg_->snapshot();
  }
  // The front actor answers once it has seen the root go down, with every outcome settled.
  auto out = call<runtime_outcome>(await_atom::value);
  if (!out)
    return reg_->snapshot();
  ended_ = out->reason;
  return std::move(*out);
}

bool runtime::ended_cleanly() const {
  return finished_ && reg_->snapshot().clean();
}

caf::error runtime::shutdown() {
  auto out = call<runtime_outcome>(shutdown_atom::value);
  if (!out)
    return out.error();
  finished_ = true;
  ended_ = out->reason;
  if (!clean_reason(out->reason))
    return out->reason;
  for (auto& x : out->shards)
    if (x.outcome == shard_outcome::gave_up)
      return make_error(errc::restart_limit_reached,
                        fmt::format("shard {} gave up: {}", x.id, x.reason));
  return {};
}

std::shared_ptr<const shard_meters> runtime::meters(const shard_id& id) const {
  return reg_->find(id);
}

std::vector<shard_id> runtime::shards() const {
  std::lock_guard<std::mutex> guard{reg_->mtx};
  std::vector<shard_id> result;
  for (auto& r : reg_->rows)
    result.push_back(r.id);
  return result;
}

} // namespace shardflow
