#include "apps/shardflow/signals.hpp"

#include <csignal>
#include <ctime>
#include <string>

#include <unistd.h>

#include <fmt/format.h>

#include "apps/shardflow/cli_log.hpp"
#include "apps/shardflow/exit_codes.hpp"

namespace shardflow::cli {

namespace {

std::atomic<int> signals_seen{0};
std::atomic<bool> stop_flag{false};
// The line a second signal writes, in the log's format, split around its timestamp; set before the
// handler is installed and never changed while it is.
std::string line_head = "\n";
std::string line_tail = " error shardflow: stopping at once\n";

// Writes "2026-12-04T04:19:45.304Z" (UTC, now) into `out` (24 bytes); async-signal-safe
// (clock_gettime, then the civil date from the day count: H. Hinnant's algorithm).
void utc_now(char* out) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const long long secs = ts.tv_sec;
  long long days = secs / 86400;
  long long rest = secs % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  days += 719468;
  const long long era = (days >= 0 ? days : days - 146096) / 146097;
  const long long doe = days - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long long mp = (5 * doy + 2) / 153;
  const long long day = doy - (153 * mp + 2) / 5 + 1;
  const long long month = mp < 10 ? mp + 3 : mp - 9;
  const long long year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const auto put = [&out](int at, long long value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10)
      out[at + i] = static_cast<char>('0' + value % 10);
  };
  put(0, year, 4);
  out[4] = '-';
  put(5, month, 2);
  out[7] = '-';
  put(8, day, 2);
  out[10] = 'T';
  put(11, rest / 3600, 2);
  out[13] = ':';
  put(14, rest / 60 % 60, 2);
  out[16] = ':';
  put(17, rest % 60, 2);
  out[19] = '.';
  put(20, ts.tv_nsec / 1'000'000, 3);
  out[23] = 'Z';
}

extern "C" void on_stop_signal(int) {
  stop_flag.store(true);
  if (signals_seen.fetch_add(1) >= 1) {
    // Only async-signal-safe calls here.
    char stamp[24];
    utc_now(stamp);
    auto ignored = ::write(STDERR_FILENO, line_head.data(), line_head.size());
    ignored = ::write(STDERR_FILENO, stamp, sizeof stamp);
    ignored = ::write(STDERR_FILENO, line_tail.data(), line_tail.size());
    (void) ignored;
    ::_exit(exit_interrupted);
  }
}

void handle(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

} // namespace

void stop_on_signals(const char* command, const char* afterwards) {
  const auto log = cli_log_settings();
  const auto message = fmt::format("stopping at once; {}", afterwards);
  if (log.format == log_format::json) {
    line_head = "{\"time\":\"";
    line_tail = fmt::format("\",\"level\":\"error\",\"message\":\"{}\"}}\n",
                            json_escape(message));
  } else {
    line_head = "\n"; // after a progress line, if one is drawn
    line_tail = fmt::format(" error shardflow {}: {}\n", command, message);
  }
  handle(SIGINT, on_stop_signal);
  handle(SIGTERM, on_stop_signal);
}

void ignore_stop_signals() {
  handle(SIGINT, SIG_IGN);
  handle(SIGTERM, SIG_IGN);
}

void ignore_sigpipe() {
  handle(SIGPIPE, SIG_IGN);
}

const std::atomic<bool>& stop_requested() noexcept {
  return stop_flag;
}

int stop_signals_seen() noexcept {
  return signals_seen.load();
}

stop_deadline::stop_deadline(std::chrono::milliseconds limit, std::string text,
                             std::string resumes) {
  if (limit.count() > 0)
    thread_ = std::thread{[this, limit, text = std::move(text), resumes = std::move(resumes)] {
      watch(limit, text, resumes);
    }};
}

stop_deadline::~stop_deadline() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void stop_deadline::arm() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    armed_ = true;
  }
  cv_.notify_all();
}

void stop_deadline::watch(std::chrono::milliseconds limit, const std::string& text,
                          const std::string& resumes) {
  std::unique_lock<std::mutex> lock{mtx_};
  // A signal handler cannot notify: the flag is looked at every 50 ms.
  while (!done_ && !armed_ && !stop_requested().load())
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  if (cv_.wait_for(lock, limit, [this] { return done_; }))
    return;
  say(log_level::error, "the stop took longer than --stop-timeout {}: stopping at once; a rerun {}",
      text, resumes);
  std::fflush(stderr);
  ::_exit(exit_interrupted); // as a second signal: the shards are not waited for
}

} // namespace shardflow::cli
