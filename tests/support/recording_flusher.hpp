// tests/support/recording_flusher.hpp - a scriptable flusher that records every call.
//
// The test keeps a shared_ptr to the script and the flusher keeps another, so the test can steer the
// flusher and read what happened while a batch processor (or a shard actor) owns it. By default it
// behaves like a perfect sink: every flush returns every pending token.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <shardflow/core/flusher.hpp>

namespace shardflow::testing {

/// What a `recording_flusher` does and what it saw.
struct flusher_script {
  // --- steering ---
  /// Records beyond this many pending ones are answered with `full`.
  std::size_t capacity = std::numeric_limits<std::size_t>::max();
  /// Records whose partition key is in this set are ignored.
  std::set<std::string> ignore_keys;
  /// Tokens a partial flush keeps back (the write is "still in flight").
  std::set<flush_token> hold;
  /// When set, a partial flush returns exactly these tokens (then the list is cleared), whatever is
  /// pending; lets a test return tokens out of order, twice, or never issued.
  std::vector<flush_token> next_flush;
  bool use_next_flush = false;
  /// Tokens the next heartbeat returns (then the list is cleared).
  std::vector<flush_token> next_heartbeat;
  /// Throw from add / flush / heartbeat when set.
  bool fail_add = false;
  bool fail_flush = false;
  bool fail_heartbeat = false;
  /// When set, a full flush returns only what a partial flush would (a contract violation).
  bool full_flush_is_partial = false;
  /// Adding a record with one of these data throws, once per entry (the entry is then removed).
  std::set<std::string> fail_on_data;
  /// When set, flushes return nothing; records become durable only through `next_heartbeat_all`.
  bool only_heartbeat = false;
  /// The next heartbeat returns every pending token (then the flag clears).
  bool next_heartbeat_all = false;

  // --- observations ---
  std::vector<flush_token> pending;    // added and not returned
  std::vector<flush_token> added;      // every token ever added, in order
  std::vector<std::string> added_data; // the data of every added record, in order
  std::vector<flush_mode> flushes;     // every flush, in order
  std::size_t heartbeats = 0;
  std::vector<std::string> durable_data; // data of every record whose token came back, in order
  std::size_t flushers_made = 0;
};

/// A flusher that does what its `flusher_script` says.
class recording_flusher final : public flusher {
public:
  explicit recording_flusher(std::shared_ptr<flusher_script> script) : s_(std::move(script)) {
    ++s_->flushers_made;
    s_->pending.clear(); // tokens of a dead incarnation's flusher never come back
  }

  add_result add(const stream_record& x, flush_token token) override {
    if (s_->fail_add)
      throw std::runtime_error("injected add failure");
    if (s_->fail_on_data.erase(x.data) > 0)
      throw std::runtime_error("injected failure at " + x.data);
    if (s_->ignore_keys.count(x.partition_key) > 0)
      return add_result::ignored;
    if (s_->pending.size() >= s_->capacity)
      return add_result::full;
    s_->pending.push_back(token);
    s_->added.push_back(token);
    s_->added_data.push_back(x.data);
    data_[token] = x.data;
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    return durable(flush_impl(mode));
  }

  std::vector<flush_token> heartbeat() override {
    ++s_->heartbeats;
    if (s_->fail_heartbeat)
      throw std::runtime_error("injected heartbeat failure");
    if (s_->next_heartbeat_all) {
      s_->next_heartbeat_all = false;
      s_->next_heartbeat = s_->pending;
    }
    auto result = std::move(s_->next_heartbeat);
    s_->next_heartbeat.clear();
    for (auto t : result)
      s_->pending.erase(std::remove(s_->pending.begin(), s_->pending.end(), t), s_->pending.end());
    return durable(std::move(result));
  }

  /// Returns a factory of recording flushers over `script`.
  static flusher_factory factory(std::shared_ptr<flusher_script> script) {
    return [script](const shard_id&) { return std::make_unique<recording_flusher>(script); };
  }

private:
  std::vector<flush_token> durable(std::vector<flush_token> tokens) {
    for (auto t : tokens)
      if (auto i = data_.find(t); i != data_.end())
        s_->durable_data.push_back(i->second);
    return tokens;
  }

  std::vector<flush_token> flush_impl(flush_mode mode) {
    s_->flushes.push_back(mode);
    if (s_->fail_flush)
      throw std::runtime_error("injected flush failure");
    if (s_->only_heartbeat && mode == flush_mode::partial)
      return {};
    if (mode == flush_mode::partial && s_->use_next_flush) {
      s_->use_next_flush = false;
      auto result = std::move(s_->next_flush);
      s_->next_flush.clear();
      for (auto t : result)
        s_->pending.erase(std::remove(s_->pending.begin(), s_->pending.end(), t),
                          s_->pending.end());
      return result;
    }
    std::vector<flush_token> result;
    std::vector<flush_token> kept;
    const bool keep_held = mode == flush_mode::partial || s_->full_flush_is_partial;
    for (auto t : s_->pending)
      (keep_held && s_->hold.count(t) > 0 ? kept : result).push_back(t);
    s_->pending.swap(kept);
    return result;
  }

  std::shared_ptr<flusher_script> s_;
  std::map<flush_token, std::string> data_;
};

/// Returns a record with sequence number `seq` and data "r<seq>".
inline stream_record make_record(std::uint64_t seq, std::string key = "k") {
  stream_record x;
  x.partition_key = std::move(key);
  x.data = "r" + std::to_string(seq);
  x.sequence.base = sequence_base{seq};
  return x;
}

/// Returns records `first` .. `first + n - 1` (make_record) as one batch.
inline record_batch make_batch(std::uint64_t first, std::uint64_t n) {
  std::vector<stream_record> xs;
  for (auto i = first; i < first + n; ++i)
    xs.push_back(make_record(i));
  return record_batch{std::move(xs)};
}

/// Returns a user record `user_sub` of `user_total` unpacked from the aggregate at `seq`.
inline stream_record make_sub_record(std::uint64_t seq, std::uint32_t user_sub,
                                     std::uint32_t user_total) {
  auto x = make_record(seq);
  x.data += "." + std::to_string(user_sub);
  x.sequence.user_sub = user_sub;
  x.sequence.user_total = user_total;
  return x;
}

} // namespace shardflow::testing
