// apps/shardflow/options.hpp - parsing of the command line's value types: durations, sizes,
// flusher specs, shard lists, HOST:PORT, unix:PATH, and whether a host is loopback.
//
// Every parser returns a `result` (core/result.hpp): the value, or a sentence that names the option
// and says what would be right; `checked` (apps/shardflow/guarded.hpp) turns a failed one into a
// usage error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shardflow/core/result.hpp>

namespace shardflow::cli {

/// The help text every duration option ends with: a bare number means seconds.
inline constexpr const char* duration_help = " (250ms, 5s, 2m, 1h; a bare number is seconds)";

/// Parses "0", "250ms", "5s", "2m", "1h" (a bare number means seconds) given to `option`.
/// @returns the duration, or why `text` is none of these (naming `option`).
result<std::chrono::milliseconds> parse_duration(const std::string& option,
                                                 const std::string& text);

/// Parses "1000", "64k", "256M", "1G" (powers of 1024) given to `option`.
/// @returns the size, or why `text` is not one (naming `option`).
result<std::uint64_t> parse_size(const std::string& option, const std::string& text);

/// The default --max-record-size of `run` and `put` (one default: what put appends, run takes).
constexpr const char* default_max_record_size = "16M";

/// Parses --max-record-size `text` (`option` names it): a size from 1 byte to 4G.
/// @returns the size, or why `text` is not one.
result<std::size_t> parse_record_size(const std::string& option, const std::string& text);

/// A flusher chosen on the command line: `null`, `stdout` or `file:DIR`.
struct flusher_spec {
  std::string name;
  std::string argument; // after the colon
};

/// Parses NAME[:ARGUMENT].
result<flusher_spec> parse_flusher(const std::string& text);

/// Parses "all" or a list like "0,2,5-7" of shard indexes below `shards`; returns the indexes in
/// ascending order, each once.
result<std::vector<std::size_t>> parse_shard_list(const std::string& text, std::size_t shards);

/// Where a server listens or a client connects: a TCP HOST:PORT, or a Unix socket ("unix:PATH").
struct listen_address {
  std::string host;
  int port = 0;
  std::string unix_path; // set for unix:PATH
};

/// Parses "HOST:PORT" with a port from 1 to 65535 given to `option`. An empty HOST means 127.0.0.1;
/// "[::1]:PORT" gives the host without its brackets.
result<listen_address> parse_host_port(const std::string& option, const std::string& text);

/// Returns whether `host` names this machine's loopback interface: "localhost", an IPv4 address in
/// 127.0.0.0/8, "::1" (also in brackets), or an IPv4-mapped 127.x address. Purely textual: other
/// names are not resolved, so a name that happens to resolve to loopback still counts as remote.
bool is_loopback_host(const std::string& host);

/// Parses "unix:PATH" or "HOST:PORT" (port 0 allowed when `allow_port_zero`) given to `option`.
result<listen_address> parse_listen_address(const std::string& option, const std::string& text,
                                            bool allow_port_zero);

/// Returns the edit distance of `a` and `b` (insertions, deletions, substitutions, and swaps of two
/// neighbours, each counting 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// Returns the candidate closest to `word` when it is close enough to be a typo of it (at most a
/// third of `word`'s length away, at least 1, at most 3), the first of equals; else "".
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

} // namespace shardflow::cli
