#include <shardflow/postgres/group_commit.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using namespace shardflow::postgres;
using namespace std::chrono_literals;

namespace {

// A group writer that holds the first group until opened, so the other batches queue behind it;
// a group holding "bad" fails.
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  bool entered = false;
  std::vector<std::vector<std::string>> groups;

  void operator()(const std::vector<const std::string*>& batches) {
    std::unique_lock<std::mutex> guard{mu};
    groups.emplace_back();
    for (auto* b : batches)
      groups.back().push_back(*b);
    if (!entered) {
      entered = true;
      cv.notify_all();
      cv.wait_for(guard, 30s, [this] { return open; });
    }
    for (auto* b : batches)
      if (*b == "bad")
        throw std::runtime_error{"refused"};
  }
};

// Waits (at most 30 s) until `pred` holds.
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!pred() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  return pred();
}

// Writes "first" (held by the gate), then `more` from threads of their own once "first" is being
// written; opens the gate when all of them are queued. Returns what each write returned (1: true,
// 0: false, -1: threw).
std::vector<int> write_behind(gate& g, group_commit& gc, const std::vector<std::string>& more) {
  std::vector<int> got(more.size() + 1, 9);
  auto one = [&](std::size_t i, const std::string& batch) {
    try {
      got[i] = gc.write(batch) ? 1 : 0;
    } catch (const std::exception&) {
      got[i] = -1;
    }
  };
  const std::string first = "first";
  std::vector<std::thread> threads;
  threads.emplace_back(one, 0, std::cref(first));
  {
    std::unique_lock<std::mutex> guard{g.mu};
    REQUIRE(g.cv.wait_for(guard, 30s, [&] { return g.entered; }));
  }
  for (std::size_t i = 0; i < more.size(); ++i)
    threads.emplace_back(one, i + 1, std::cref(more[i]));
  CHECK(eventually([&] { return gc.queued() == more.size(); }));
  {
    std::lock_guard<std::mutex> guard{g.mu};
    g.open = true;
  }
  g.cv.notify_all();
  for (auto& t : threads)
    t.join();
  return got;
}

} // namespace

SCENARIO("batches that arrive while a group is written go together in the next group",
         "[postgres]") {
  gate g;
  group_commit gc{[&](const std::vector<const std::string*>& b) { g(b); }, {1, 64}};
  CHECK(write_behind(g, gc, {"b", "c", "d", "e"}) == std::vector<int>{1, 1, 1, 1, 1});
  REQUIRE(g.groups.size() == 2);
  CHECK(g.groups[0] == std::vector<std::string>{"first"});
  CHECK(g.groups[1].size() == 4);
  CHECK(gc.groups() == 2);
}

SCENARIO("a group takes at most max_batches", "[postgres]") {
  gate g;
  group_commit gc{[&](const std::vector<const std::string*>& b) { g(b); }, {1, 3}};
  CHECK(write_behind(g, gc, {"b", "c", "d", "e"}) == std::vector<int>{1, 1, 1, 1, 1});
  REQUIRE(g.groups.size() == 3);
  CHECK(g.groups[1].size() == 3);
  CHECK(g.groups[2].size() == 1);
}

SCENARIO("a failed group: alone its failure is rethrown, shared each batch is to be written alone",
         "[postgres]") {
  gate g;
  group_commit gc{[&](const std::vector<const std::string*>& b) { g(b); }, {1, 64}};
  CHECK(write_behind(g, gc, {"bad", "good"}) == std::vector<int>{1, 0, 0});
  CHECK_THROWS_WITH(gc.write("bad"), "refused");
  CHECK(gc.write("good"));
}
