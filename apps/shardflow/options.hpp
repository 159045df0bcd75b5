// apps/shardflow/options.hpp - parsing of the command line's value types: durations, sizes,
// flusher specs, shard lists, HOST:PORT.
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

/// Splits "HOST:PORT"; returns false when it is not of that form.
bool parse_host_port(const std::string& text, std::string& host, int& port);

} // namespace shardflow::cli
