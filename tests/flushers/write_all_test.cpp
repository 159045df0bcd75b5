// Tests of flushers/write_all.hpp: a whole buffer through short writes, and a failure reported.
#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <shardflow/flushers/write_all.hpp>

using namespace shardflow;

SCENARIO("write_all writes a buffer larger than a pipe holds, through short writes",
         "[flushers][write_all]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string data(1 << 20, 'x'); // 1 MiB, far more than a pipe's 64 KiB
  std::string got;
  std::thread reader{[&] {
    char buf[4096];
    for (;;) {
      auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0)
        break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }};
  const bool ok = write_all(fds[1], data.data(), data.size());
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  CHECK(ok);
  CHECK(got == data);
}

SCENARIO("write_all reports a failed write", "[flushers][write_all]") {
  const int fd = ::open("/dev/null", O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK_FALSE(write_all(fd, "abc", 3)); // not open for writing
  CHECK(errno == EBADF);
  ::close(fd);
  CHECK(write_all(-1, "", 0)); // nothing to write is not a failure
}
