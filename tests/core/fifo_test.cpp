// core/fifo: order, indexed access from the front, and the reclaiming of popped slots, against a
// std::deque under seeded random operations.
#include <shardflow/core/fifo.hpp>

#include <deque>
#include <memory>
#include <random>

#include <catch2/catch.hpp>

using shardflow::fifo;

SCENARIO("a fifo gives its elements back in order and allocates nothing while empty",
         "[core][fifo]") {
  fifo<int> q;
  CHECK(q.empty());
  CHECK(q.begin() == q.end());
  for (int i = 0; i < 40; ++i)
    q.push_back(i);
  CHECK(q.size() == 40);
  for (int i = 0; i < 40; ++i) {
    REQUIRE(q.front() == i);
    CHECK(q[q.size() - 1] == 39);
    CHECK(q.back() == 39);
    q.pop_front();
  }
  CHECK(q.empty());
  q.push_back(7);
  q.release();
  CHECK(q.empty());
  q.push_back(8);
  CHECK(q.front() == 8);
}

SCENARIO("a popped element is released at once", "[core][fifo]") {
  fifo<std::shared_ptr<int>> q;
  auto x = std::make_shared<int>(1);
  q.push_back(x);
  q.push_back(std::make_shared<int>(2));
  CHECK(x.use_count() == 2);
  q.pop_front();
  CHECK(x.use_count() == 1);
  CHECK(*q.front() == 2);
}

SCENARIO("a fifo behaves like a std::deque under seeded random operations", "[core][fifo]") {
  std::minstd_rand rng{GENERATE(1u, 2u, 3u, 4u)};
  fifo<int> q;
  std::deque<int> model;
  int next = 0;
  for (int step = 0; step < 20'000; ++step) {
    if (rng() % 3 != 0 || model.empty()) {
      q.emplace_back(next);
      model.push_back(next++);
    } else {
      q.pop_front();
      model.pop_front();
    }
    REQUIRE(q.size() == model.size());
    if (!model.empty()) {
      REQUIRE(q.front() == model.front());
      REQUIRE(q.back() == model.back());
      const auto i = rng() % model.size();
      REQUIRE(q[i] == model[i]);
    }
  }
  std::size_t n = 0;
  for (auto x : q)
    REQUIRE(x == model[n++]);
  CHECK(n == model.size());
}
