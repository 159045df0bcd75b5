// The replay buffer (core/record_source.hpp): append, read, rewind to a checkpoint, release what a
// checkpoint covers, and the end; examples, then seeded random runs against a reference model.
#include <shardflow/core/record_source.hpp>

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/recording_flusher.hpp"

using namespace shardflow;

namespace {

// Records first..first+n-1 (sequence number = index, data "r<index>").
record_batch records(std::uint64_t first, std::uint64_t n) {
  return testing::make_batch(first, n);
}

sequence_number seq(std::uint64_t n) {
  sequence_number x;
  x.base = sequence_base{n};
  return x;
}

// The sequence numbers of everything `buf` hands out from now on, read `max` at a time.
std::vector<std::uint64_t> drain(replay_buffer& buf, std::size_t max = 1000) {
  std::vector<std::uint64_t> result;
  for (int guard = 0; guard < 100'000; ++guard) {
    auto b = buf.read(max);
    if (b.empty())
      break;
    CHECK(b.size() <= max);
    for (const auto& x : b)
      result.push_back(*x.sequence.base.to_uint64());
  }
  return result;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last_excl) {
  std::vector<std::uint64_t> result;
  for (auto i = first; i < last_excl; ++i)
    result.push_back(i);
  return result;
}

} // namespace

SCENARIO("a replay buffer hands out what was appended, in order, across batches",
         "[core][replay_buffer]") {
  replay_buffer buf;
  buf.append(records(0, 5));
  buf.append(record_batch{}); // ignored
  buf.append(records(5, 3));
  CHECK(buf.retained() == 8);
  CHECK(buf.last() == seq(7));
  CHECK(drain(buf, 2) == range(0, 8));
  CHECK(buf.read(10).empty()); // nothing new now
  CHECK_FALSE(buf.at_end());   // not closed: more may come
  buf.append(records(8, 2));
  CHECK(drain(buf) == range(8, 10));
}

SCENARIO("a replay buffer is at its end once closed and read to the last record",
         "[core][replay_buffer]") {
  replay_buffer buf;
  buf.append(records(0, 3));
  buf.close();
  CHECK_FALSE(buf.at_end()); // records are still to be read
  CHECK(drain(buf) == range(0, 3));
  CHECK(buf.at_end());
  buf.rewind(seq(0)); // a new incarnation resumes after record 0
  CHECK_FALSE(buf.at_end());
  CHECK(drain(buf) == range(1, 3));
  CHECK(buf.at_end());
}

SCENARIO("rewinding replays every record after the checkpoint, also inside a batch",
         "[core][replay_buffer]") {
  replay_buffer buf;
  buf.append(records(0, 10));
  buf.append(records(10, 10));
  CHECK(drain(buf).size() == 20);
  GIVEN("no checkpoint") {
    buf.rewind(std::nullopt);
    CHECK(drain(buf) == range(0, 20));
  }
  GIVEN("a checkpoint inside the first batch") {
    buf.rewind(seq(4));
    CHECK(drain(buf, 3) == range(5, 20));
  }
  GIVEN("a checkpoint at the end of a batch") {
    buf.rewind(seq(9));
    CHECK(drain(buf) == range(10, 20));
  }
  GIVEN("a checkpoint at the last record") {
    buf.rewind(seq(19));
    CHECK(drain(buf).empty());
  }
}

SCENARIO("releasing forgets what a checkpoint covers and keeps the read position",
         "[core][replay_buffer]") {
  replay_buffer buf;
  buf.append(records(0, 10));
  buf.append(records(10, 10));
  CHECK(buf.read(7).size() == 7); // read 0..6
  buf.release(seq(3));            // inside the first batch, before the cursor
  CHECK(buf.retained() == 16);
  CHECK(drain(buf) == range(7, 20)); // the cursor did not move
  buf.release(seq(12));              // past the first batch, into the second
  CHECK(buf.retained() == 7);
  buf.rewind(std::nullopt); // a new incarnation without a checkpoint gets what is kept
  CHECK(drain(buf) == range(13, 20));
  buf.release(seq(19));
  CHECK(buf.retained() == 0);
  CHECK(buf.retained_bytes() == 0);
  CHECK_FALSE(buf.last());
}

SCENARIO("releasing up to the read position of a batch keeps the rest of that batch",
         "[core][replay_buffer]") {
  replay_buffer buf;
  buf.append(records(0, 10));
  CHECK(buf.read(4).size() == 4); // read 0..3
  buf.release(seq(3));
  CHECK(drain(buf) == range(4, 10));
}

SCENARIO("records pushed again at or before a checkpoint the buffer has seen are dropped",
         "[core][replay_buffer]") {
  GIVEN("a buffer that a restarted shard attached to at checkpoint 9 (a durable store's)") {
    replay_buffer buf;
    buf.rewind(seq(9));
    WHEN("the host pushes again from its start: 0..14") {
      buf.append(records(0, 5));  // wholly covered
      buf.append(records(5, 10)); // 5..9 covered, 10..14 not
      THEN("only the records after the checkpoint are kept and handed out") {
        CHECK(buf.retained() == 5);
        CHECK(drain(buf) == range(10, 15));
      }
    }
  }
  GIVEN("a buffer whose records were all read and released up to 7") {
    replay_buffer buf;
    buf.append(records(0, 8));
    CHECK(drain(buf).size() == 8);
    buf.release(seq(7));
    WHEN("a producer pushes 5..9") {
      buf.append(records(5, 5));
      THEN("only 8 and 9 are kept and handed out") {
        CHECK(buf.retained() == 2);
        CHECK(drain(buf) == range(8, 10));
      }
    }
  }
}

SCENARIO("a replay buffer counts the payload bytes it keeps", "[core][replay_buffer]") {
  replay_buffer buf;
  std::vector<stream_record> xs(10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    xs[i].partition_key = "k";
    xs[i].data.assign(99, 'x');
    xs[i].sequence.base = sequence_base{i};
  }
  buf.append(record_batch{xs});
  CHECK(buf.retained_bytes() == 1000);
  buf.release(xs[2].sequence); // the first three, inside the batch
  CHECK(buf.retained() == 7);
  CHECK(buf.retained_bytes() == 700);
  buf.release(xs[9].sequence); // the rest: the whole batch
  CHECK(buf.retained() == 0);
  CHECK(buf.retained_bytes() == 0);
}

SCENARIO("a replay buffer behaves like its reference model under seeded random operations",
         "[core][replay_buffer][property]") {
  // The model: records 0..appended-1 exist; those <= released are gone; the cursor is the next
  // index to hand out (never before the first kept record).
  for (std::uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng{seed};
    auto pick = [&](std::uint64_t n) {
      return std::uniform_int_distribution<std::uint64_t>{0, n}(rng);
    };
    replay_buffer buf;
    std::uint64_t appended = 0;
    std::optional<std::uint64_t> released;
    std::uint64_t cursor = 0;
    std::uint64_t read_upto = 0; // the highest index handed out since the last rewind, plus one
    for (int step = 0; step < 60; ++step) {
      const auto first_kept = released ? *released + 1 : 0;
      switch (pick(3)) {
        case 0: { // append a batch
          const auto n = 1 + pick(6);
          buf.append(records(appended, n));
          appended += n;
          break;
        }
        case 1: { // read
          const auto max = 1 + pick(8);
          auto b = buf.read(max);
          cursor = std::max(cursor, first_kept);
          const auto want = std::min<std::uint64_t>(max, appended - cursor);
          // a read ends at a batch boundary at the latest, so it may return fewer
          REQUIRE(b.size() <= want);
          if (want > 0)
            REQUIRE(b.size() > 0);
          for (const auto& x : b)
            REQUIRE(*x.sequence.base.to_uint64() == cursor++);
          read_upto = std::max(read_upto, cursor);
          break;
        }
        case 2: { // release what a shard acknowledged: something it read
          if (read_upto == 0 || read_upto <= first_kept)
            break;
          const auto upto = first_kept + pick(read_upto - 1 - first_kept);
          buf.release(seq(upto));
          released = upto;
          cursor = std::max(cursor, upto + 1);
          break;
        }
        default: { // a new incarnation attaches with the last acknowledged checkpoint
          buf.rewind(released ? std::optional<sequence_number>{seq(*released)} : std::nullopt);
          cursor = released ? *released + 1 : 0;
          read_upto = cursor;
          break;
        }
      }
      INFO("seed " << seed << " step " << step);
      REQUIRE(buf.retained() == appended - (released ? *released + 1 : 0));
      if (buf.retained() > 0)
        REQUIRE(buf.last() == seq(appended - 1));
      else
        REQUIRE_FALSE(buf.last());
    }
    // Finally everything after the last release comes out, once, in order.
    buf.close();
    buf.rewind(released ? std::optional<sequence_number>{seq(*released)} : std::nullopt);
    CHECK(drain(buf, 3) == range(released ? *released + 1 : 0, appended));
    CHECK(buf.at_end());
  }
}
