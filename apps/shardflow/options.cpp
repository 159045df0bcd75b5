#include "apps/shardflow/options.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>

namespace shardflow::cli {

namespace {

std::optional<std::uint64_t> parse_number(const std::string& digits) {
  if (digits.empty() || digits.size() > 18
      || !std::all_of(digits.begin(), digits.end(),
                      [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return std::stoull(digits);
}

} // namespace

result<std::chrono::milliseconds> parse_duration(const std::string& option,
                                                 const std::string& text) {
  auto i = text.find_first_not_of("0123456789");
  auto n = parse_number(text.substr(0, i));
  const auto unit = i == std::string::npos ? std::string{} : text.substr(i);
  using std::chrono::milliseconds;
  if (n && unit == "ms")
    return milliseconds(*n);
  if (n && (unit.empty() || unit == "s"))
    return milliseconds(*n * 1000);
  if (n && unit == "m")
    return milliseconds(*n * 60'000);
  if (n && unit == "h")
    return milliseconds(*n * 3'600'000);
  return fail(fmt::format("{}: \"{}\" is not a duration (use 0, 250ms, 5s, 2m, 1h)", option, text));
}

result<std::uint64_t> parse_size(const std::string& option, const std::string& text) {
  auto i = text.find_first_not_of("0123456789");
  auto n = parse_number(text.substr(0, i));
  const auto unit = i == std::string::npos ? std::string{} : text.substr(i);
  if (n && unit.empty())
    return *n;
  if (n && (unit == "k" || unit == "K"))
    return *n << 10;
  if (n && unit == "M")
    return *n << 20;
  if (n && unit == "G")
    return *n << 30;
  return fail(fmt::format("{}: \"{}\" is not a size (use 1000, 64k, 256M, 1G)", option, text));
}

result<std::size_t> parse_record_size(const std::string& option, const std::string& text) {
  auto n = parse_size(option, text);
  if (!n)
    return fail(n.error());
  if (*n == 0 || *n > (std::uint64_t{1} << 32))
    return fail(
      fmt::format("{}: \"{}\" is not a size from 1 to 4G (use 64k, 16M)", option, text));
  return static_cast<std::size_t>(*n);
}

result<flusher_spec> parse_flusher(const std::string& text) {
  auto colon = text.find(':');
  flusher_spec out;
  out.name = text.substr(0, colon);
  out.argument = colon == std::string::npos ? std::string{} : text.substr(colon + 1);
  if (out.name == "null" || out.name == "stdout") {
    if (!out.argument.empty())
      return fail(fmt::format("flusher {} takes no argument", out.name));
    return out;
  }
  if (out.name == "file") {
    if (out.argument.empty())
      return fail("flusher file needs a directory: --flusher file:DIR");
    return out;
  }
  if (out.name == "postgres") {
    if (out.argument.empty())
      return fail("flusher postgres needs a connection string: --flusher postgres:CONNINFO "
                  "(e.g. postgres:host=/run/postgresql dbname=app, or postgres:postgresql://...)");
    return out;
  }
  if (out.name == "kafka") {
    auto slash = out.argument.rfind('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == out.argument.size())
      return fail("flusher kafka needs brokers and a topic: --flusher kafka:HOST:PORT[,...]/TOPIC");
    return out;
  }
  return fail(fmt::format("unknown flusher \"{}\": choose null, stdout or file:DIR, "
                          "postgres:CONNINFO or kafka:BROKERS/TOPIC",
                          out.name));
}

result<std::vector<std::size_t>> parse_shard_list(const std::string& text, std::size_t shards) {
  std::vector<std::size_t> out;
  if (text.empty()) // e.g. a script's empty variable: running every shard would be a guess
    return fail("the shard list is empty: use all, or indexes and ranges like 0,2,5-7");
  if (text == "all") {
    for (std::size_t i = 0; i < shards; ++i)
      out.push_back(i);
    return out;
  }
  std::set<std::size_t> picked;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto dash = part.find('-');
    auto lo = parse_number(part.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : parse_number(part.substr(dash + 1));
    if (!lo || !hi || *lo > *hi)
      return fail(
        fmt::format("bad shard list \"{}\": use all, or indexes and ranges like 0,2,5-7", text));
    if (*hi >= shards)
      return fail(fmt::format("shard {} does not exist: the stream has {} shards (0 to {})", *hi,
                              shards, shards - 1));
    for (auto i = *lo; i <= *hi; ++i)
      picked.insert(i);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  out.assign(picked.begin(), picked.end());
  return out;
}

namespace {

// HOST:PORT with a port from 0 to 65535; strips the brackets of "[v6]".
bool split_host_port(const std::string& text, std::string& host, int& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return false;
  auto n = parse_number(text.substr(colon + 1));
  if (!n || *n > 65535)
    return false;
  host = colon == 0 ? std::string{"127.0.0.1"} : text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = static_cast<int>(*n);
  return true;
}

} // namespace

result<listen_address> parse_host_port(const std::string& option, const std::string& text) {
  listen_address out;
  if (!split_host_port(text, out.host, out.port) || out.port == 0)
    return fail(fmt::format("{}: \"{}\" is not HOST:PORT", option, text));
  return out;
}

bool is_loopback_host(const std::string& host) {
  auto h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
    h = h.substr(1, h.size() - 2);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  if (h == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) != 1)
    return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6))
    return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

result<listen_address> parse_listen_address(const std::string& option, const std::string& text,
                                            bool allow_port_zero) {
  listen_address out;
  if (text.rfind("unix:", 0) == 0) {
    out.unix_path = text.substr(5);
    if (out.unix_path.empty())
      return fail(fmt::format("{}: \"{}\" names no socket path (use unix:PATH)", option, text));
    return out;
  }
  if (!split_host_port(text, out.host, out.port) || (out.port == 0 && !allow_port_zero))
    return fail(fmt::format("{}: \"{}\" is neither HOST:PORT nor unix:PATH", option, text));
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: three rows of the Levenshtein table, and a swap of neighbours.
  std::vector<std::size_t> before(b.size() + 1);
  std::vector<std::size_t> last(b.size() + 1);
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    last[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({last[j] + 1, row[j - 1] + 1, last[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        row[j] = std::min(row[j], before[j - 2] + 1);
    }
    before.swap(last);
    last.swap(row);
  }
  return last[b.size()];
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  const auto limit = std::min<std::size_t>(3, std::max<std::size_t>(1, word.size() / 3));
  std::string best;
  auto best_distance = limit + 1;
  for (const auto& c : candidates) {
    const auto d = edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

} // namespace shardflow::cli
