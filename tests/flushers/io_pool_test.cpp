#include <shardflow/flushers/io_pool.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/support/thrown_code.hpp"

#include <shardflow/core/error.hpp>
#include <shardflow/flushers/conformance.hpp>

using namespace shardflow;
using namespace std::chrono_literals;
using shardflow::testing::thrown_code;

namespace {

// What the test sinks share with the test: a gate that holds writes, what was written, a failure.
struct sink_log {
  std::mutex mu;
  std::condition_variable cv;
  bool open = true;
  bool fail = false;
  int started = 0;
  std::vector<std::string> written; // one entry per batch

  // Waits (at most 10 s) until `pred` holds under the lock.
  template <class Pred>
  bool wait_for(Pred pred) {
    std::unique_lock<std::mutex> guard{mu};
    return cv.wait_for(guard, 10s, pred);
  }

  void set_open(bool value) {
    {
      std::lock_guard<std::mutex> guard{mu};
      open = value;
    }
    cv.notify_all();
  }
};

class test_sink final : public batch_sink {
public:
  explicit test_sink(std::shared_ptr<sink_log> log) : log_(std::move(log)) {
  }

  void append(std::string& batch, const stream_record& x) override {
    batch += x.data;
    batch += ';';
  }

  void write(const std::string& batch, std::size_t) override {
    std::unique_lock<std::mutex> guard{log_->mu};
    ++log_->started;
    log_->cv.notify_all();
    log_->cv.wait_for(guard, 10s, [this] { return log_->open; });
    if (log_->fail)
      throw error{errc::io_failed, "cannot write batch: disk on fire"};
    log_->written.push_back(batch);
    log_->cv.notify_all();
  }

private:
  std::shared_ptr<sink_log> log_;
};

stream_record rec(int i) {
  stream_record x;
  x.data = std::to_string(i);
  return x;
}

// Heartbeats (at most 10 s) until `want` tokens have come back in all; returns them.
std::vector<flush_token> heartbeat_until(flusher& f, std::size_t want) {
  std::vector<flush_token> got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto more = f.heartbeat();
    got.insert(got.end(), more.begin(), more.end());
    if (more.empty())
      std::this_thread::yield();
  }
  std::sort(got.begin(), got.end());
  return got;
}

struct fixture {
  std::shared_ptr<io_pool> pool = std::make_shared<io_pool>(io_pool_config{2});
  std::shared_ptr<sink_log> log = std::make_shared<sink_log>();
  pooled_flusher_config cfg{2, 2};

  std::unique_ptr<pooled_flusher> make() {
    return std::make_unique<pooled_flusher>(pool, std::make_unique<test_sink>(log), cfg);
  }
};

} // namespace

SCENARIO("a pooled flusher returns a batch's tokens from heartbeat once its write is done",
         "[flushers][io_pool]") {
  fixture fx;
  fx.log->set_open(false);
  auto f = fx.make();
  CHECK(f->add(rec(1), 1) == add_result::added);
  CHECK(f->add(rec(2), 2) == add_result::added);
  CHECK(f->flush(flush_mode::partial).empty()); // sealed, being written
  REQUIRE(fx.log->wait_for([&] { return fx.log->started == 1; }));
  CHECK(f->heartbeat().empty()); // the write has not returned
  CHECK(f->in_flight() == 1);
  fx.log->set_open(true);
  CHECK(heartbeat_until(*f, 2) == std::vector<flush_token>{1, 2});
  CHECK(fx.log->written == std::vector<std::string>{"1;2;"});
  CHECK(f->flush(flush_mode::full).empty());
}

SCENARIO("a pooled flusher holds at most max_in_flight batches, then answers full",
         "[flushers][io_pool]") {
  fixture fx;
  fx.log->set_open(false);
  auto f = fx.make();
  for (int i = 1; i <= 6; ++i)
    CHECK(f->add(rec(i), static_cast<flush_token>(i)) == add_result::added);
  CHECK(f->in_flight() == 2); // {1,2} and {3,4} sealed; {5,6} being built
  CHECK(f->add(rec(7), 7) == add_result::full);
  CHECK(f->add(rec(7), 7) == add_result::full);
  fx.log->set_open(true);
  CHECK(heartbeat_until(*f, 4) == std::vector<flush_token>{1, 2, 3, 4});
  CHECK(f->add(rec(7), 7) == add_result::added);
  auto rest = f->flush(flush_mode::full);
  std::sort(rest.begin(), rest.end());
  CHECK(rest == std::vector<flush_token>{5, 6, 7});
  CHECK(fx.log->written == std::vector<std::string>{"1;2;", "3;4;", "5;6;", "7;"});
}

SCENARIO("flush(full) waits for every batch of the shard", "[flushers][io_pool]") {
  fixture fx;
  fx.log->set_open(false);
  auto f = fx.make();
  for (int i = 1; i <= 5; ++i)
    REQUIRE(f->add(rec(i), static_cast<flush_token>(i)) == add_result::added);
  std::thread opener{[&] {
    fx.log->wait_for([&] { return fx.log->started >= 1; });
    fx.log->set_open(true);
  }};
  auto all = f->flush(flush_mode::full);
  opener.join();
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<flush_token>{1, 2, 3, 4, 5});
  CHECK(f->in_flight() == 0);
  CHECK(fx.log->written.size() == 3);
}

SCENARIO("a failed write fails the shard at its next call", "[flushers][io_pool]") {
  fixture fx;
  fx.log->fail = true;
  auto f = fx.make();
  REQUIRE(f->add(rec(1), 1) == add_result::added);
  CHECK(thrown_code([&] { f->flush(flush_mode::full); }) == errc::io_failed);
  CHECK_THROWS_WITH(f->heartbeat(), Catch::Contains("disk on fire"));
  CHECK_THROWS_WITH(f->flush(flush_mode::partial), Catch::Contains("disk on fire"));
}

SCENARIO("destroying a pooled flusher waits for its running write and drops the rest",
         "[flushers][io_pool]") {
  fixture fx;
  fx.log->set_open(false);
  auto f = fx.make();
  for (int i = 1; i <= 5; ++i)
    REQUIRE(f->add(rec(i), static_cast<flush_token>(i)) == add_result::added);
  REQUIRE(fx.log->wait_for([&] { return fx.log->started == 1; }));
  std::thread opener{[&] { fx.log->set_open(true); }};
  f.reset();
  opener.join();
  CHECK(fx.log->written == std::vector<std::string>{"1;2;"});
}

SCENARIO("many shards share a pool of two threads, each shard's batches in order",
         "[flushers][io_pool]") {
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  std::vector<std::shared_ptr<sink_log>> logs;
  std::vector<std::unique_ptr<pooled_flusher>> shards;
  for (int s = 0; s < 50; ++s) {
    logs.push_back(std::make_shared<sink_log>());
    shards.push_back(std::make_unique<pooled_flusher>(
      pool, std::make_unique<test_sink>(logs.back()), pooled_flusher_config{3, 2}));
  }
  std::vector<std::vector<flush_token>> got(shards.size());
  for (int i = 0; i < 20; ++i) {
    for (std::size_t s = 0; s < shards.size(); ++s) {
      auto r = shards[s]->add(rec(i), static_cast<flush_token>(i));
      if (r == add_result::full) {
        auto t = shards[s]->flush(flush_mode::partial);
        got[s].insert(got[s].end(), t.begin(), t.end());
        r = shards[s]->add(rec(i), static_cast<flush_token>(i));
      }
      REQUIRE(r == add_result::added);
    }
  }
  for (std::size_t s = 0; s < shards.size(); ++s) {
    auto t = shards[s]->flush(flush_mode::full);
    got[s].insert(got[s].end(), t.begin(), t.end());
    std::sort(got[s].begin(), got[s].end());
    CHECK(got[s].size() == 20);
    std::string all;
    for (auto& b : logs[s]->written)
      all += b;
    CHECK(all == "0;1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;");
  }
}

SCENARIO("the pooled flusher keeps the flusher contract", "[flushers][io_pool]") {
  auto pool = std::make_shared<io_pool>(io_pool_config{2});
  auto log = std::make_shared<sink_log>();
  auto factory = pooled_flusher::factory(
    pool, [log](const shard_id&) { return std::make_unique<test_sink>(log); }, {4, 2});
  REQUIRE_NOTHROW(require_flusher_contract(factory));
}

SCENARIO("a batch built in the buffers of one written before holds only its own records",
         "[flushers][io_pool]") {
  // Batch buffers are recycled through the lane (no allocation per batch): one batch in flight at
  // a time, so from the third batch on each is built in the emptied buffers of an earlier one.
  auto pool = std::make_shared<io_pool>(io_pool_config{1});
  auto log = std::make_shared<sink_log>();
  pooled_flusher f{pool, std::make_unique<test_sink>(log), {2, 1}};
  // Records long enough that a batch's bytes are on the heap (not in the string itself).
  auto long_rec = [](int i) {
    stream_record x;
    x.data = std::string(40, static_cast<char>('a' + i));
    return x;
  };
  std::size_t tokens = 0;
  for (int i = 0; i < 12; ++i) {
    if (f.add(long_rec(i), static_cast<flush_token>(i)) == add_result::full) {
      tokens += f.flush(flush_mode::full).size();
      REQUIRE(f.add(long_rec(i), static_cast<flush_token>(i)) == add_result::added);
    }
  }
  tokens += f.flush(flush_mode::full).size();
  CHECK(tokens == 12);
  REQUIRE(log->written.size() == 6);
  for (int b = 0; b < 6; ++b)
    CHECK(log->written[b] == long_rec(2 * b).data + ";" + long_rec(2 * b + 1).data + ";");
}

SCENARIO("a sink that joins batches gets every batch waiting as one write, and only those",
         "[flushers][io_pool]") {
  auto pool = std::make_shared<io_pool>(io_pool_config{1});
  auto log = std::make_shared<sink_log>();
  class joining_sink final : public batch_sink {
  public:
    explicit joining_sink(std::shared_ptr<sink_log> log) : inner_(std::move(log)) {
    }
    void append(std::string& batch, const stream_record& x) override {
      inner_.append(batch, x);
    }
    void write(const std::string& batch, std::size_t records) override {
      records_.push_back(records);
      inner_.write(batch, records);
    }
    bool joins_batches() const noexcept override {
      return true;
    }
    std::vector<std::size_t> records_; // per write: the records it was told it holds

  private:
    test_sink inner_;
  };
  auto owned = std::make_unique<joining_sink>(log);
  auto* sink = owned.get();
  log->set_open(false);
  pooled_flusher f{pool, std::move(owned), {2, 4}};
  for (int i = 1; i <= 3; ++i) // the third seals {1,2}
    REQUIRE(f.add(rec(i), static_cast<flush_token>(i)) == add_result::added);
  REQUIRE(log->wait_for([&] { return log->started == 1; })); // {1,2} held at the gate
  for (int i = 4; i <= 8; ++i)
    REQUIRE(f.add(rec(i), static_cast<flush_token>(i)) == add_result::added);
  // {3,4} and {5,6} wait; {7,8} is being built.
  CHECK(f.flush(flush_mode::partial).empty()); // seals {7,8}: three batches wait
  CHECK(f.in_flight() == 4);
  log->set_open(true);
  auto got = heartbeat_until(f, 8);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<flush_token>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(f.in_flight() == 0);
  CHECK(log->written == std::vector<std::string>{"1;2;", "3;4;5;6;7;8;"});
  CHECK(sink->records_ == std::vector<std::size_t>{2, 6});
  WHEN("a batch is sealed after that") {
    REQUIRE(f.add(rec(9), 9) == add_result::added);
    CHECK(f.flush(flush_mode::full) == std::vector<flush_token>{9});
    CHECK(log->written.back() == "9;");
  }
}
