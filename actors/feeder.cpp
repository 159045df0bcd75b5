#include <shardflow/actors/feeder.hpp>

#include <algorithm>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <shardflow/actors/messages.hpp>
#include <shardflow/actors/supervisor.hpp>
#include <shardflow/core/error.hpp>
#include <shardflow/core/fifo.hpp>

namespace shardflow {

namespace {

struct feeder_state {
  static inline const char* name = "shardflow.feeder";

  feeder_config cfg;
  std::shared_ptr<record_source> source;
  replay_buffer* buffer = nullptr; // set when the source takes pushes
  caf::actor shard;
  std::uint64_t credit = 0;
  // Payload bytes the shard still takes; may go below zero, since a batch always carries at least
  // one record and the shard gives back exactly what it got.
  std::int64_t credit_bytes = 0;
  record_batch leftover; // read from the source, not yet sent: it did not fit the byte credit
  bool end_sent = false;
  bool idle_sent = false; // the shard was told that the source has nothing now
  bool poll_pending = false;
  struct waiting_push {
    caf::response_promise rp;
    record_batch batch;
  };
  fifo<waiting_push> pushes;
  bool pressure_sent = false; // pushes wait and the shard was asked to checkpoint since its last
  bool end_requested = false; // the producer said end; close once its waiting pushes are in
  std::vector<caf::response_promise> end_waiters; // answered once the buffer is closed
  std::optional<sequence_number> last_pushed;     // pushes must come in sequence-number order
};

using feeder_ptr = caf::stateful_actor<feeder_state>*;

// How many of the first records of a batch fit a credit, and their payload bytes.
struct fit {
  std::size_t records = 0;
  std::int64_t bytes = 0;
};

// Returns how many of the first records of `batch`, at most `max`, fit in `budget` bytes (one at
// least), with their bytes. A batch that fits whole costs nothing (its payload bytes were counted
// when it was made: a walk over records that are no longer in cache was what a batch cost the
// feeder); only a batch cut at the credit is walked.
fit fitting(const record_batch& batch, std::size_t max, std::int64_t budget) {
  if (batch.size() <= max) {
    const auto all = static_cast<std::int64_t>(payload_bytes(batch));
    if (all <= budget)
      return {batch.size(), all};
  }
  fit result;
  for (const auto& x : batch) {
    const auto bytes = static_cast<std::int64_t>(payload_bytes(x));
    if (result.records == max || (result.records > 0 && bytes > budget))
      break;
    budget -= bytes;
    result.bytes += bytes;
    ++result.records;
  }
  return result;
}

// Tells the shard once that the source has nothing now (its watchdog then knows it is idle); said
// again only after records went out.
void tell_idle(feeder_ptr self) {
  auto& st = self->state;
  if (st.idle_sent || st.source->at_end())
    return;
  st.idle_sent = true;
  self->send(st.shard, idle_atom::value);
}

bool halted(const feeder_state& st) {
  return st.cfg.halt && st.cfg.halt->load(std::memory_order_relaxed);
}

void feed(feeder_ptr self) {
  auto& st = self->state;
  if (!st.shard || halted(st))
    return; // a stop is under way: nothing more leaves for the shard
  while (st.credit > 0 && st.credit_bytes > 0) {
    const auto max = static_cast<std::size_t>(std::min<std::uint64_t>(st.credit, st.cfg.max_batch));
    auto batch = std::move(st.leftover);
    st.leftover = {};
    if (batch.empty())
      batch = st.source->read(max);
    if (batch.empty()) {
      tell_idle(self); // credit left and nothing to read: the shard waits, it is not stuck
      break;
    }
    st.idle_sent = false;
    const auto fits = fitting(batch, max, st.credit_bytes);
    if (fits.records < batch.size()) {
      st.leftover = batch.slice(fits.records, batch.size() - fits.records);
      batch = batch.slice(0, fits.records);
    }
    st.credit -= batch.size();
    st.credit_bytes -= fits.bytes;
    self->send(st.shard, records_atom::value, std::move(batch));
  }
  if (!st.leftover.empty())
    return; // more to send as soon as the shard gives credit back
  if (st.source->at_end()) {
    if (!st.end_sent) {
      st.end_sent = true;
      if (st.source->stopped())
        self->send(st.shard, stopped_atom::value); // not an end: the shard must not record one
      else
        self->send(st.shard, end_atom::value);
    }
    return;
  }
  if (st.credit > 0 && st.buffer == nullptr && st.cfg.poll_interval.count() > 0
      && !st.poll_pending) {
    st.poll_pending = true;
    self->delayed_send(self, st.cfg.poll_interval, poll_atom::value);
  }
}

// Admits waiting pushes while the buffer is under its limit (one at least, so progress is certain).
void admit_pushes(feeder_ptr self) {
  auto& st = self->state;
  while (!st.pushes.empty()
         && (st.buffer->retained() == 0
             || (st.buffer->retained() < st.cfg.push_limit
                 && st.buffer->retained_bytes() < st.cfg.push_limit_bytes))) {
    auto p = std::move(st.pushes.front());
    st.pushes.pop_front();
    st.buffer->append(std::move(p.batch));
    p.rp.deliver(caf::ok_atom::value);
  }
  // Pushes wait until a checkpoint releases what the buffer keeps: ask the shard for one now
  // rather than at its interval (5 s by default: a 100,000-record limit would cap a producer at
  // 20,000 records/s). Once per checkpoint: asked again after each acknowledged one while pushes
  // still wait (and of a new incarnation), never in a loop when nothing more can be checkpointed.
  if (st.pushes.empty()) {
    st.pressure_sent = false;
  } else if (!st.pressure_sent && st.shard) {
    st.pressure_sent = true;
    self->send(st.shard, pressure_atom::value);
  }
  if (st.end_requested && st.pushes.empty()) {
    st.buffer->close();
    for (auto& rp : st.end_waiters)
      rp.deliver(caf::ok_atom::value);
    st.end_waiters.clear();
  }
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
    p.rp.deliver(make_error(errc::restarting,
                            fmt::format("the shard's feeder stopped ({}) before the batch was "
                                        "taken; push it again (once the shard runs again; if it "
                                        "ended or gave up, that push says so)",
                                        self->system().render(why))));
  st.pushes.clear();
  // An end not yet carried out is lost with this feeder: the producer says it again.
  for (auto& rp : st.end_waiters)
    rp.deliver(make_error(errc::restarting,
                          fmt::format("the shard's feeder stopped ({}) before the end was taken; "
                                      "end again",
                                      self->system().render(why))));
  st.end_waiters.clear();
}

// The source threw (the feeder's handlers only throw from it): says so, answers the waiting pushes.
void source_failed(feeder_ptr self, const caf::error& why) {
  if (self->state.cfg.on_source_error)
    self->state.cfg.on_source_error(why);
  fail_pushes(self, why);
}

// The feeder ends with its supervisor, on an abnormal exit, and on an exception; each time it answers
// the pushes still waiting first.
void install_handlers(feeder_ptr self, const caf::actor& sup) {
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
  self->set_exception_handler(
    [self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
      auto why = error_from(eptr);
      source_failed(self, why);
      return why;
    });
}

// A new shard incarnation attaches: it starts without credit, after its checkpoint.
void attach(feeder_ptr self, const std::optional<sequence_number>& after) {
  auto& st = self->state;
  st.shard = caf::actor_cast<caf::actor>(self->current_sender());
  st.credit = 0;
  st.credit_bytes = 0;
  st.leftover = {};
  st.end_sent = false;
  st.idle_sent = false;
  st.pressure_sent = false;
  st.source->rewind(after);
}

// A producer pushes `batch`: refused unless in sequence-number order; answered once admitted.
caf::result<caf::ok_atom> push(feeder_ptr self, record_batch& batch) {
  auto& st = self->state;
  if (st.buffer == nullptr)
    return make_error(errc::bad_input, "this shard reads its records itself; it takes no pushes");
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
}

// A feeder whose source could not be made answers its start handshake with the source's error and
// ends with it, so its supervisor reports that error (not a feeder that vanished).
caf::behavior broken_feeder(feeder_ptr self, caf::error why) {
  return {
    [self, why](start_atom) -> caf::result<caf::ok_atom> {
      self->quit(why);
      return why;
    },
  };
}

caf::behavior feeder_impl(feeder_ptr self, caf::actor sup, source_factory make, feeder_config cfg) {
  install_handlers(self, sup);
  auto& st = self->state;
  st.cfg = cfg;
  try {
    st.source = make();
  } catch (...) {
    auto why = error_from(std::current_exception());
    source_failed(self, why);
    return broken_feeder(self, std::move(why));
  }
  if (!st.source)
    return broken_feeder(self, make_error(errc::start_failed, "the source factory made no source"));
  // A source that can tell when it has records again wakes the feeder at once. The address is
  // weak: a source outliving its feeder wakes nobody.
  st.source->on_readable([addr = self->address()] {
    if (auto me = caf::actor_cast<caf::actor>(addr))
      caf::anon_send(me, readable_atom::value);
  });
  st.buffer = dynamic_cast<replay_buffer*>(st.source.get());
  if (st.buffer != nullptr)
    st.last_pushed = st.buffer->last(); // a buffer may outlive a feeder (runtime.cpp)
  return {
    [](start_atom) { return caf::ok_atom::value; },
    [self](attach_atom, const std::optional<sequence_number>& after) -> caf::result<caf::ok_atom> {
      try {
        attach(self, after);
      } catch (...) { // the source cannot rewind: the shard fails to start with its error
        auto why = error_from(std::current_exception());
        source_failed(self, why);
        self->quit(why);
        return why;
      }
      return caf::ok_atom::value;
    },
    [self](demand_atom, std::uint64_t n, std::uint64_t bytes) {
      if (!from_shard(self))
        return;
      self->state.credit += n;
      self->state.credit_bytes += static_cast<std::int64_t>(bytes);
      feed(self);
    },
    [self](acked_atom, const sequence_number& upto) {
      if (!from_shard(self))
        return;
      self->state.source->release(upto);
      self->state.pressure_sent = false; // a checkpoint came: a push still waiting asks again
      if (self->state.buffer != nullptr)
        admit_pushes(self);
    },
    [self](push_atom, record_batch& batch) { return push(self, batch); },
    [self](end_atom) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.buffer == nullptr)
        return caf::ok_atom::value; // the shard reads its own records: their end is the source's
      st.end_requested = true;
      auto rp = self->make_response_promise();
      st.end_waiters.push_back(rp);
      admit_pushes(self);
      return rp;
    },
    [self](poll_atom) {
      self->state.poll_pending = false;
      feed(self);
    },
    [self](readable_atom) { feed(self); }, // the delayed poll, if pending, stays: it is harmless
  };
}

} // namespace

caf::actor spawn_feeder(caf::event_based_actor* self, source_factory make, feeder_config cfg) {
  return self->spawn(feeder_impl, caf::actor_cast<caf::actor>(self), std::move(make), cfg);
}

} // namespace shardflow
