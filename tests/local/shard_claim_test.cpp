#include <shardflow/local/shard_claim.hpp>

#include <cerrno>
#include <csignal>
#include <string>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.hpp"

#include <shardflow/core/error.hpp>

using namespace shardflow;
using shardflow::testing::slurp;
using shardflow::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

// Returns the error a claim throws (fails the test when it succeeds).
error refused(const local::stream_dir& stream, const std::vector<std::size_t>& shards) {
  try {
    auto c = local::shard_claims::claim(stream, shards);
    FAIL("the claim of shards the stream has claimed already succeeded");
  } catch (const error& e) {
    return e;
  }
  return error{errc::io_failed, "unreachable"};
}

// A child process that claims shards and holds them until it is killed.
class claiming_child {
public:
  claiming_child(const local::stream_dir& stream, std::vector<std::size_t> shards) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      char ok = 'n';
      try {
        auto claim = local::shard_claims::claim(stream, shards);
        ok = 'y';
        static_cast<void>(::write(ready[1], &ok, 1));
        for (;;)
          ::pause(); // until SIGKILL
      } catch (...) {
        static_cast<void>(::write(ready[1], &ok, 1));
      }
      ::_exit(1);
    }
    ::close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    const int n = ::poll(&p, 1, 30'000); // a deadline, not a sleep: the child answers at once
    char ok = 'n';
    if (n == 1)
      static_cast<void>(::read(ready[0], &ok, 1));
    ::close(ready[0]);
    claimed_ = ok == 'y';
  }

  ~claiming_child() {
    kill();
  }

  bool claimed() const noexcept {
    return claimed_;
  }

  pid_t pid() const noexcept {
    return pid_;
  }

  /// Ends the child with SIGKILL (no cleanup of its own runs) and reaps it.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR)
      continue;
    pid_ = -1;
  }

private:
  pid_t pid_ = -1;
  bool claimed_ = false;
};

} // namespace

SCENARIO("a second claim of a shard in the same process fails with shard_owned naming it",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 4);
  auto first = local::shard_claims::claim(stream, {3, 2});
  CHECK(first.shards() == std::vector<std::size_t>{2, 3});
  auto e = refused(stream, {3, 1}); // takes shard 1, then finds shard 3 owned
  CHECK(e.code() == errc::shard_owned);
  CHECK_THAT(e.what(), Catch::Contains("shard-00003") && Catch::Contains("shard-00003.lock")
                         && Catch::Contains("pid " + std::to_string(::getpid()))
                         && Catch::Contains("--shards"));
  THEN("the refused claim kept nothing: shard 1 is free") {
    CHECK(local::shard_claims::claim(stream, {1}).shards() == std::vector<std::size_t>{1});
  }
  THEN("a released claim can be taken again") {
    first.release();
    CHECK_NOTHROW(local::shard_claims::claim(stream, {2, 3}));
  }
  THEN("a moved claim still holds its shards, and its destructor releases them") {
    {
      auto moved = std::move(first);
      CHECK(refused(stream, {2}).code() == errc::shard_owned);
    }
    CHECK_NOTHROW(local::shard_claims::claim(stream, {2}));
  }
}

SCENARIO("claims on disjoint shard sets coexist", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 4);
  auto a = local::shard_claims::claim(stream, {0, 1});
  auto b = local::shard_claims::claim(stream, {3, 2});
  CHECK(b.shards() == std::vector<std::size_t>{2, 3});
  CHECK(fs::exists(local::claim_file(stream, 3)));
  CHECK_THAT(slurp(local::claim_file(stream, 3)),
             Catch::Contains("pid " + std::to_string(::getpid()) + "\n"));
}

SCENARIO("a claim of a shard another process holds fails until that process is killed", "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 4);
  claiming_child child{stream, {1, 2}};
  REQUIRE(child.claimed());
  auto e = refused(stream, {0, 2});
  CHECK(e.code() == errc::shard_owned);
  CHECK_THAT(e.what(), Catch::Contains("shard-00002 of the stream")
                         && Catch::Contains("pid " + std::to_string(child.pid()))
                         && Catch::Contains("claimed at"));
  CHECK_NOTHROW(local::shard_claims::claim(stream, {0, 3})); // disjoint from the child's
  WHEN("the owner is killed with SIGKILL") {
    child.kill();
    THEN("a new claim takes its shards at once") {
      auto c = local::shard_claims::claim(stream, {1, 2});
      CHECK(c.shards() == std::vector<std::size_t>{1, 2});
    }
  }
}

SCENARIO("a claim of a shard the stream does not have, or whose lock file cannot be made, fails",
         "[local]") {
  temp_dir dir;
  auto stream = local::stream_dir::create(dir.path / "s", 2);
  CHECK(refused(stream, {2}).code() == errc::bad_input);
  fs::create_directory(local::claim_file(stream, 1)); // no file can be made there (even by root)
  auto e = refused(stream, {1, 0});
  CHECK(e.code() == errc::io_failed);
  CHECK_THAT(e.what(), Catch::Contains("shard-00001.lock"));
  CHECK_NOTHROW(local::shard_claims::claim(stream, {0})); // all or none: shard 0 was let go
}
