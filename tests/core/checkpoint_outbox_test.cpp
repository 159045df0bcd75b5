#include <shardflow/core/checkpoint_outbox.hpp>

#include <optional>
#include <random>
#include <utility>

#include <catch2/catch.hpp>

using namespace shardflow;
using namespace std::chrono_literals;
using kind = outbox_action::kind;

namespace {

checkpoint at(std::uint64_t n) {
  return checkpoint{sequence_number{sequence_base{n}, 0}};
}

checkpoint end_marker() {
  return checkpoint{};
}

std::uint64_t position_of(const outbox_action& x) {
  REQUIRE(x.cp.position);
  return *x.cp.position->base.to_uint64();
}

const checkpoint_outbox::time_point t0{};

} // namespace

SCENARIO("an idle outbox saves an offered checkpoint at once", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  auto a = box.offer(at(5));
  REQUIRE(a);
  CHECK(a->what == kind::save);
  CHECK(position_of(*a) == 5);
  CHECK(box.in_flight());
  CHECK_FALSE(box.drained());
}

SCENARIO("a newer checkpoint supersedes the one waiting behind the save in flight",
         "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(at(1)));
  CHECK_FALSE(box.offer(at(2))); // one in flight: nothing to send now
  CHECK_FALSE(box.offer(at(3)));
  auto a = box.ack();
  REQUIRE(a);
  CHECK(a->what == kind::save);
  CHECK(position_of(*a) == 3); // 2 was superseded
  CHECK_FALSE(box.ack());      // nothing waits any more
  CHECK(box.drained());
  CHECK(box.acked() == 2);
}

SCENARIO("the end marker leaves after every position, once", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(at(1)));
  CHECK_FALSE(box.offer(end_marker()));
  CHECK_FALSE(box.offer(at(2))); // offered after the end marker, still saved before it
  auto a = box.ack();
  REQUIRE(a);
  CHECK(position_of(*a) == 2);
  auto b = box.ack();
  REQUIRE(b);
  CHECK(b->what == kind::save);
  CHECK_FALSE(b->cp.position);
  CHECK_FALSE(box.ack());
  CHECK(box.drained());
}

SCENARIO("an end marker offered again is saved once", "[core][checkpoint_outbox]") {
  GIVEN("an idle outbox: the first end marker leaves at once") {
    checkpoint_outbox box;
    auto a = box.offer(end_marker());
    REQUIRE(a);
    CHECK_FALSE(a->cp.position);
    CHECK_FALSE(box.offer(end_marker())); // in flight already: not queued again
    auto done = box.close();
    CHECK_FALSE(done); // the end marker is still in flight
    auto b = box.ack();
    REQUIRE(b);
    CHECK(b->what == kind::done);
    CHECK(box.acked() == 1);
    auto c = box.offer(end_marker()); // acknowledged already: not saved again
    REQUIRE(c);
    CHECK(c->what == kind::done);
    CHECK(box.drained());
  }
  GIVEN("a failed end marker offered again") {
    checkpoint_outbox box;
    REQUIRE(box.offer(end_marker()));
    auto r = box.failed(t0);
    REQUIRE(r);
    CHECK_FALSE(box.offer(end_marker()));
    auto a = box.retry(r->ticket);
    REQUIRE(a);
    CHECK_FALSE(a->cp.position);
    CHECK_FALSE(box.ack());
    CHECK(box.drained());
  }
}

SCENARIO("a failed save is retried with doubling backoff and never taken as success",
         "[core][checkpoint_outbox]") {
  checkpoint_outbox box{{100ms, 350ms}};
  REQUIRE(box.offer(at(7)));
  auto r1 = box.failed(t0);
  REQUIRE(r1);
  CHECK(r1->what == kind::retry);
  CHECK(r1->delay == 100ms);
  CHECK(r1->at == t0 + 100ms);
  CHECK(r1->attempt == 1);
  CHECK(box.acked() == 0);
  CHECK(box.failures() == 1);
  CHECK_FALSE(box.drained());
  CHECK_FALSE(box.close()); // not done while a retry is pending
  auto s = box.retry(r1->ticket);
  REQUIRE(s);
  CHECK(s->what == kind::save);
  CHECK(position_of(*s) == 7); // the same checkpoint again
  auto r2 = box.failed(t0 + 100ms);
  REQUIRE(r2);
  CHECK(r2->delay == 200ms);
  REQUIRE(box.retry(r2->ticket));
  auto r3 = box.failed(t0 + 300ms);
  REQUIRE(r3);
  CHECK(r3->delay == 350ms); // capped
  CHECK(r3->at == t0 + 650ms);
  auto s3 = box.retry(r3->ticket);
  REQUIRE(s3);
  auto d = box.ack();
  REQUIRE(d);
  CHECK(d->what == kind::done); // closed before and now drained
  CHECK(box.acked() == 1);
  CHECK(box.failures() == 3);
}

SCENARIO("an acknowledgement resets the backoff", "[core][checkpoint_outbox]") {
  checkpoint_outbox box{{100ms, 10s}};
  REQUIRE(box.offer(at(1)));
  auto r = box.failed(t0);
  REQUIRE(box.retry(r->ticket));
  CHECK_FALSE(box.ack());
  REQUIRE(box.offer(at(2)));
  auto r2 = box.failed(t0 + 1s);
  REQUIRE(r2);
  CHECK(r2->delay == 100ms);
  CHECK(r2->attempt == 1);
}

SCENARIO("a failed save does not bring back a position older than one waiting",
         "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(at(1)));
  CHECK_FALSE(box.offer(at(2)));
  auto r = box.failed(t0);
  auto s = box.retry(r->ticket);
  REQUIRE(s);
  CHECK(position_of(*s) == 2);
  CHECK_FALSE(box.ack());
}

SCENARIO("a failed end marker goes back in line after the positions", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(end_marker()));
  CHECK_FALSE(box.offer(at(9)));
  auto r = box.failed(t0);
  auto s = box.retry(r->ticket);
  REQUIRE(s);
  CHECK(position_of(*s) == 9);
  auto e = box.ack();
  REQUIRE(e);
  CHECK_FALSE(e->cp.position);
}

SCENARIO("stale and early retry tickets are ignored", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(at(1)));
  auto r1 = box.failed(t0);
  CHECK_FALSE(box.retry(r1->ticket + 1));
  auto s = box.retry(r1->ticket);
  REQUIRE(s);
  CHECK_FALSE(box.retry(r1->ticket)); // fired twice: the second does nothing
  auto r2 = box.failed(t0);
  CHECK_FALSE(box.retry(r1->ticket)); // the old timer fires late
  CHECK(box.retry(r2->ticket));
}

SCENARIO("answers without a save in flight are ignored", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  CHECK_FALSE(box.ack());
  CHECK_FALSE(box.failed(t0));
  CHECK(box.acked() == 0);
  CHECK(box.failures() == 0);
}

SCENARIO("a stale save fences the outbox", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  REQUIRE(box.offer(at(1)));
  CHECK_FALSE(box.offer(at(2)));
  box.fence();
  CHECK(box.fenced());
  CHECK(box.drained());
  CHECK_FALSE(box.offer(at(3)));
  CHECK_FALSE(box.ack());
  CHECK_FALSE(box.close());
  CHECK(box.acked() == 0);
}

SCENARIO("a closed outbox is done once drained", "[core][checkpoint_outbox]") {
  GIVEN("nothing to save") {
    checkpoint_outbox box;
    auto d = box.close();
    REQUIRE(d);
    CHECK(d->what == kind::done);
  }
  GIVEN("a save in flight and the end marker waiting") {
    checkpoint_outbox box;
    REQUIRE(box.offer(at(4)));
    CHECK_FALSE(box.offer(end_marker()));
    CHECK_FALSE(box.close());
    auto e = box.ack();
    REQUIRE(e);
    CHECK(e->what == kind::save);
    auto d = box.ack();
    REQUIRE(d);
    CHECK(d->what == kind::done);
  }
}

SCENARIO("dropping forgets what waits and any pending retry, not the save in flight",
         "[core][checkpoint_outbox]") {
  GIVEN("a save in flight and more waiting") {
    checkpoint_outbox box;
    REQUIRE(box.offer(at(1)));
    CHECK_FALSE(box.offer(at(2)));
    CHECK_FALSE(box.offer(end_marker()));
    box.drop();
    CHECK_FALSE(box.close());
    CHECK(box.in_flight());
    auto d = box.ack();
    REQUIRE(d);
    CHECK(d->what == kind::done);
  }
  GIVEN("a retry pending") {
    checkpoint_outbox box;
    REQUIRE(box.offer(at(1)));
    auto r = box.failed(t0);
    box.drop();
    CHECK_FALSE(box.backing_off());
    CHECK_FALSE(box.retry(r->ticket));
    auto d = box.close();
    REQUIRE(d);
    CHECK(d->what == kind::done);
  }
}

SCENARIO("under seeded random answers the outbox saves in order and ends at the last offer",
         "[core][checkpoint_outbox][property]") {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng{seed};
    auto coin = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
    checkpoint_outbox box{{1ms, 8ms}};
    auto now = t0;
    std::uint64_t offered = 0;          // positions 1..offered were offered, in order
    std::optional<std::uint64_t> sent;  // the highest position sent so far
    std::optional<std::uint64_t> acked; // the highest position acknowledged
    bool end_sent = false;
    bool end_acked = false;
    bool done = false;
    std::optional<outbox_action> timer; // the pending retry, if any
    int in_flight = 0;
    auto take = [&](checkpoint_outbox::step s) {
      if (!s)
        return;
      INFO("seed " << seed);
      REQUIRE_FALSE(done);
      switch (s->what) {
        case kind::save:
          REQUIRE(++in_flight == 1); // never two at once
          REQUIRE_FALSE(end_acked);
          if (s->cp.position) {
            const auto p = *s->cp.position->base.to_uint64();
            REQUIRE_FALSE(end_sent); // the end marker goes last
            REQUIRE((!sent || p >= *sent));
            sent = p;
          } else {
            end_sent = true;
          }
          break;
        case kind::retry:
          REQUIRE(s->at > now);
          REQUIRE(s->delay <= 8ms);
          timer = s;
          break;
        case kind::done:
          done = true;
          break;
      }
    };
    const int offers = 1 + static_cast<int>(rng() % 20);
    bool closed = false;
    for (int step = 0; step < 500 && !done; ++step) {
      now += 1ms;
      if (offered < static_cast<std::uint64_t>(offers) && coin(40)) {
        take(box.offer(at(++offered)));
      } else if (offered == static_cast<std::uint64_t>(offers) && !closed) {
        take(box.offer(end_marker()));
        take(box.close());
        closed = true;
      } else if (in_flight == 1 && coin(60)) {
        const auto cp = *box.in_flight();
        in_flight = 0;
        if (coin(70)) {
          if (cp.position)
            acked = *cp.position->base.to_uint64();
          else
            end_acked = true;
          take(box.ack());
        } else {
          if (!cp.position)
            end_sent = false; // it goes back in line
          take(box.failed(now));
        }
      } else if (timer && now >= timer->at) {
        auto t = std::exchange(timer, std::nullopt);
        take(box.retry(t->ticket));
      }
    }
    INFO("seed " << seed);
    REQUIRE(done);
    CHECK(acked == std::optional<std::uint64_t>{offered}); // the last offer was acknowledged
    CHECK(end_acked);
    CHECK(box.acked() >= 2);
  }
}

SCENARIO("with a save timeout a save not answered by its deadline is overdue, then retried",
         "[core][checkpoint_outbox]") {
  checkpoint_outbox box{{100ms, 10'000ms, 2'000ms}};
  CHECK_FALSE(box.next_deadline());
  box.at(t0 + 5s);
  auto s = box.offer(at(1));
  REQUIRE(s);
  REQUIRE(s->what == kind::save);
  CHECK(s->ticket == box.in_flight_id());
  REQUIRE(box.next_deadline());
  CHECK(*box.next_deadline() == t0 + 7s); // the time it left plus the timeout
  CHECK_FALSE(box.overdue(t0 + 7s - 1ms));
  CHECK(box.overdue(t0 + 7s));
  auto r = box.failed(t0 + 7s);
  REQUIRE(r);
  CHECK(r->what == kind::retry);
  CHECK(r->delay == 100ms);
  CHECK_FALSE(box.overdue(t0 + 8s)); // nothing in flight
  REQUIRE(box.next_deadline());
  CHECK(*box.next_deadline() == t0 + 7s + 100ms); // the end of the backoff
  CHECK_FALSE(box.retry_due(t0 + 7s + 99ms));
  box.at(t0 + 7s + 100ms);
  auto again = box.retry_due(t0 + 7s + 100ms);
  REQUIRE(again);
  CHECK(again->what == kind::save);
  CHECK(position_of(*again) == 1);
  CHECK(again->ticket == s->ticket + 1); // another save: an answer to the first is not for it
  CHECK(*box.next_deadline() == t0 + 9s + 100ms);
  box.ack();
  CHECK_FALSE(box.next_deadline());
}

SCENARIO("without a save timeout a save has no deadline", "[core][checkpoint_outbox]") {
  checkpoint_outbox box;
  box.at(t0);
  REQUIRE(box.offer(at(1)));
  CHECK_FALSE(box.next_deadline());
  CHECK_FALSE(box.overdue(t0 + 24h));
  auto r = box.failed(t0 + 1s);
  REQUIRE(r);
  REQUIRE(box.next_deadline()); // the backoff still ends
  CHECK(*box.next_deadline() == r->at);
  box.fence();
  CHECK_FALSE(box.next_deadline());
  CHECK_FALSE(box.retry_due(t0 + 1h));
}
