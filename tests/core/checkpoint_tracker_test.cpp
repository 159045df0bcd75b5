#include <shardflow/core/checkpoint_tracker.hpp>

#include <catch2/catch.hpp>

#include <shardflow/core/error.hpp>

using namespace shardflow;

namespace {

sequence_number seq(std::uint64_t n, std::uint32_t user_sub = 0, std::uint32_t user_total = 0) {
  return sequence_number{sequence_base{n}, std::nullopt, user_sub, user_total};
}

// Issues `n` plain records numbered by their position; the batch keeps their sequence numbers alive.
void issue_n(checkpoint_tracker& t, std::uint64_t n, bool done = false) {
  std::vector<stream_record> xs(n);
  for (std::uint64_t i = 0; i < n; ++i)
    xs[i].sequence = seq(t.next_token() + i);
  record_batch b{std::move(xs)};
  t.hold(b);
  for (const auto& x : b)
    t.issue(x.sequence, done);
}

errc code_of_complete(checkpoint_tracker& t, flush_token token) {
  try {
    t.complete(token);
  } catch (const error& e) {
    return e.code();
  }
  return errc::none;
}

} // namespace

SCENARIO("a checkpoint never passes a record whose token is missing", "[actors][tracker]") {
  // erlmld's checkpointing_test: items 0, 1 and 3 done; the gap at 2 holds the checkpoint at 1.
  checkpoint_tracker t;
  CHECK_FALSE(t.can_advance());
  issue_n(t, 4);
  t.complete(0);
  t.complete(1);
  t.complete(3);
  REQUIRE(t.can_advance());
  CHECK(t.take() == seq(1));
  CHECK_FALSE(t.can_advance());
  WHEN("the gap closes") {
    t.complete(2);
    THEN("the checkpoint moves over the whole contiguous run") {
      REQUIRE(t.can_advance());
      CHECK(t.take() == seq(3));
      CHECK(t.outstanding() == 0);
    }
  }
}

SCENARIO("a sub-record is not a checkpoint position", "[actors][tracker]") {
  // erlmld's checkpointing_subrecord_test, with sub-sequence checkpoints disabled: the tracker is told
  // per record whether it is checkpointable.
  checkpoint_tracker t{false};
  const auto s0 = seq(7, 0, 3);
  const auto s1 = seq(7, 1, 3);
  const auto s2 = seq(7, 2, 3);
  const auto s3 = seq(8);
  for (const auto* s : {&s0, &s1, &s2, &s3})
    t.issue(*s, false);
  t.complete(0);
  t.complete(2);
  CHECK_FALSE(t.can_advance()); // 0 is done but is a sub-record; 1 is missing
  t.complete(1);
  REQUIRE(t.can_advance());
  CHECK(t.take() == s2); // the last user record finishes the aggregate
  t.complete(3);
  REQUIRE(t.can_advance());
  CHECK(t.take() == s3);
}

SCENARIO("with sub-sequence checkpoints a sub-record is a checkpoint position",
         "[actors][tracker]") {
  checkpoint_tracker t{true};
  const auto s0 = seq(7, 0, 3);
  const auto s1 = seq(7, 1, 3);
  const auto s2 = seq(7, 2, 3);
  for (const auto* s : {&s0, &s1, &s2})
    t.issue(*s, false);
  t.complete(0);
  t.complete(2);
  REQUIRE(t.can_advance());
  CHECK(t.take() == s0);
  t.complete(1);
  REQUIRE(t.can_advance());
  CHECK(t.take() == s2);
}

SCENARIO("an ignored record is done at once and can carry the checkpoint", "[actors][tracker]") {
  checkpoint_tracker t;
  const auto s0 = seq(0);
  const auto s1 = seq(1);
  const auto s2 = seq(2);
  t.issue(s0, false);
  t.issue(s1, true);
  t.issue(s2, true);
  CHECK(t.outstanding() == 1);
  CHECK_FALSE(t.can_advance());
  t.complete(0);
  REQUIRE(t.can_advance());
  CHECK(t.take() == seq(2));
}

SCENARIO("tokens returned twice or never issued are errors", "[actors][tracker]") {
  checkpoint_tracker t;
  issue_n(t, 3);
  t.complete(1);
  CHECK(code_of_complete(t, 1) == errc::duplicate_token);
  CHECK(code_of_complete(t, 3) == errc::unknown_token);
  t.complete(0);
  CHECK(code_of_complete(t, 0) == errc::duplicate_token); // now below the contiguous prefix
  CHECK(t.outstanding() == 1);
}

SCENARIO("the tracker's memory follows the out-of-order window, not the record count",
         "[actors][tracker]") {
  checkpoint_tracker t;
  GIVEN("a million records completed in order and checkpointed every thousand") {
    for (int round = 0; round < 1000; ++round) {
      issue_n(t, 1000);
      for (flush_token tok = t.next_token() - 1000; tok < t.next_token(); ++tok)
        t.complete(tok);
      REQUIRE(t.can_advance());
      CHECK(t.take() == seq(t.next_token() - 1));
    }
    THEN("the ring never grew past the window of one batch, and old batches were let go") {
      CHECK(t.capacity() <= 2048);
      CHECK(t.window() == 1);
      CHECK(t.batches_held() == 1);
    }
  }
  GIVEN("one record held back while many later ones complete") {
    issue_n(t, 1);
    for (int i = 0; i < 5000; ++i) {
      issue_n(t, 1);
      t.complete(t.next_token() - 1);
    }
    CHECK(t.batches_held() == 5001); // every batch may still carry the checkpoint
    THEN("the window spans the gap, and closing it moves the checkpoint to the end") {
      CHECK(t.window() == 5001);
      CHECK_FALSE(t.can_advance());
      t.complete(0);
      REQUIRE(t.can_advance());
      CHECK(t.take() == seq(5000));
      CHECK(t.window() == 1);
      CHECK(t.batches_held() == 1);
    }
  }
}
