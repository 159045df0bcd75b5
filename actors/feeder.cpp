#include "actors/feeder.hpp"

#include <algorithm>
#include <deque>
#include <utility>

#include <caf/all.hpp>
#include <fmt/format.h>

#include "actors/messages.hpp"
#include "actors/supervisor.hpp"
#include "flushers/error.hpp"

namespace shardflow {

namespace {

struct feeder_state {
  static inline const char* name = "shardflow.feeder";

  feeder_config cfg;
  std::shared_ptr<record_source> source;
  replay_buffer* buffer = nullptr; // set when the source takes pushes
  caf::actor shard;
  std::uint64_t credit = 0;
  bool end_sent = false;
  bool poll_pending = false;
  struct waiting_push {
    caf::response_promise rp;
    record_batch batch;
  };
  std::deque<waiting_push> pushes;
  bool end_requested = false; // the producer said end; close once its waiting pushes are in
  std::optional<sequence_number> last_pushed; // pushes must come in sequence-number order
};

using feeder_ptr = caf::stateful_actor<feeder_state>*;

void feed(feeder_ptr self) {
  auto& st = self->state;
  if (!st.shard)
    return;
  while (st.credit > 0) {
    auto batch = st.source->read(static_cast<std::size_t>(std::min<std::uint64_t>(st.credit,
                                                                                  st.cfg.max_batch)));
    if (batch.empty())
      break;
    st.credit -= batch.size();
    self->send(st.shard, records_atom::value, std::move(batch));
  }
  if (st.source->at_end()) {
    if (!st.end_sent) {
      st.end_sent = true;
      self->send(st.shard, end_atom::value);
    }
    return;
  }
  if (st.credit > 0 && st.buffer == nullptr && st.cfg.poll_interval.count() > 0 && !st.poll_pending) {
    st.poll_pending = true;
    self->delayed_send(self, st.cfg.poll_interval, poll_atom::value);
  }
}

// Admits waiting pushes while the buffer is under its limit (one at least, so progress is certain).
void admit_pushes(feeder_ptr self) {
  auto& st = self->state;
  while (!st.pushes.empty()
         && (st.buffer->retained() == 0 || st.buffer->retained() < st.cfg.push_limit)) {
    auto p = std::move(st.pushes.front());
    st.pushes.pop_front();
    st.buffer->append(std::move(p.batch));
    p.rp.deliver(caf::ok_atom::value);
  }
  if (st.end_requested && st.pushes.empty())
    st.buffer->close();
  feed(self);
}

bool from_shard(feeder_ptr self) {
  auto& st = self->state;
  return st.shard && self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(st.shard);
}

// A feeder that stops answers the pushes still waiting, so that no producer waits for ever; they
// were not appended, so the producer may push them again once the shard is back.
void fail_pushes(feeder_ptr self, const caf::error& why) {
  auto& st = self->state;
  for (auto& p : st.pushes)
    p.rp.deliver(make_error(errc::restarting, fmt::format("the shard's feeder stopped ({}); push "
                                                          "again",
                                                          self->system().render(why))));
  st.pushes.clear();
}

caf::behavior feeder_impl(feeder_ptr self, caf::actor sup, source_factory make, feeder_config cfg) {
  self->monitor(sup);
  self->set_down_handler([self, addr = sup.address()](caf::down_msg& msg) {
    if (msg.source != addr)
      return;
    fail_pushes(self, msg.reason);
    self->quit(msg.reason);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!msg.reason)
      return;
    fail_pushes(self, msg.reason);
    self->quit(msg.reason);
  });
  self->set_exception_handler([self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    auto why = error_from(eptr);
    fail_pushes(self, why);
    return why;
  });
  auto& st = self->state;
  st.cfg = cfg;
  st.source = make();
  st.buffer = dynamic_cast<replay_buffer*>(st.source.get());
  if (st.buffer != nullptr)
    st.last_pushed = st.buffer->last(); // a buffer may outlive a feeder (runtime.cpp)
  return {
    [self](start_atom) { return caf::ok_atom::value; },
    [self](attach_atom, const std::optional<sequence_number>& after) {
      auto& st = self->state;
      st.shard = caf::actor_cast<caf::actor>(self->current_sender());
      st.credit = 0;
      st.end_sent = false;
      st.source->rewind(after);
      return caf::ok_atom::value;
    },
    [self](demand_atom, std::uint64_t n) {
      if (!from_shard(self))
        return;
      self->state.credit += n;
      feed(self);
    },
    [self](acked_atom, const sequence_number& upto) {
      if (!from_shard(self))
        return;
      self->state.source->release(upto);
      if (self->state.buffer != nullptr)
        admit_pushes(self);
    },
    [self](push_atom, record_batch& batch) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.buffer == nullptr)
        return make_error(errc::not_found, "this shard reads its records itself; it takes no pushes");
      auto last = st.last_pushed;
      for (const auto& x : batch) {
        if (last && x.sequence <= *last)
          return make_error(errc::bad_input,
                            fmt::format("records must be pushed in increasing sequence-number order: "
                                        "{} follows {}",
                                        to_string(x.sequence), to_string(*last)));
        last = x.sequence;
      }
      st.last_pushed = last;
      auto rp = self->make_response_promise();
      st.pushes.push_back({rp, std::move(batch)});
      admit_pushes(self);
      return rp;
    },
    [self](end_atom) {
      auto& st = self->state;
      if (st.buffer == nullptr)
        return;
      st.end_requested = true;
      admit_pushes(self);
    },
    [self](poll_atom) {
      self->state.poll_pending = false;
      feed(self);
    },
  };
}

} // namespace

caf::actor spawn_feeder(caf::event_based_actor* self, source_factory make, feeder_config cfg) {
  return self->spawn(feeder_impl, caf::actor_cast<caf::actor>(self), std::move(make), cfg);
}

} // namespace shardflow
