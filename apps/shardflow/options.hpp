// apps/shardflow/options.hpp - parsing of the command line's value types: durations, sizes,
// flusher specs, shard lists, HOST:PORT, unix:PATH, and whether a host is loopback.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardflow::cli {

/// Parses "0", "250ms", "5s", "2m", "1h" (a bare number means seconds).
/// @returns the duration, or nullopt when `text` is none of these.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

/// Parses "1000", "64k", "256M", "1G" (powers of 1024).
std::optional<std::uint64_t> parse_size(const std::string& text);

/// A flusher chosen on the command line: `null`, `stdout` or `file:DIR`.
struct flusher_spec {
  std::string name;
  std::string argument; // after the colon
};

/// Parses NAME[:ARGUMENT]; returns an error message or an empty string.
std::string parse_flusher(const std::string& text, flusher_spec& out);

/// Parses "all" or a list like "0,2,5-7" of shard indexes below `shards`; returns an error message
/// or an empty string.
std::string parse_shard_list(const std::string& text, std::size_t shards,
                             std::vector<std::size_t>& out);

/// Splits "HOST:PORT"; returns false when it is not of that form. An empty HOST means 127.0.0.1;
/// "[::1]:PORT" gives the host without its brackets.
bool parse_host_port(const std::string& text, std::string& host, int& port);

/// Returns whether `host` names this machine's loopback interface: "localhost", an IPv4 address in
/// 127.0.0.0/8, "::1" (also in brackets), or an IPv4-mapped 127.x address. Purely textual: other
/// names are not resolved, so a name that happens to resolve to loopback still counts as remote.
bool is_loopback_host(const std::string& host);

/// Where a server listens or a client connects: a TCP HOST:PORT, or a Unix socket ("unix:PATH").
struct listen_address {
  std::string host;
  int port = 0;
  std::string unix_path; // set for unix:PATH
};

/// Parses "unix:PATH" or "HOST:PORT" (port 0 allowed when `allow_port_zero`); returns an error
/// message naming `option`, or an empty string.
std::string parse_listen_address(const std::string& option, const std::string& text,
                                 bool allow_port_zero, listen_address& out);

} // namespace shardflow::cli
