// fuzz/mld_worker.cpp - the whole MLD worker on arbitrary daemon lines, with a durability checker.
//
// Input: a configuration byte, then the daemon's lines ('\n'-separated). The worker runs over a
// fake `line_io`: after each checkpoint request it gets the next input line when that is a
// checkpoint reply (the fuzzer's: errors, other positions, garbage), else a success reply echoing
// the request. A scripted flusher (capacity, partial flushes holding tokens back, heartbeats
// returning them, ignored keys: all from the configuration byte) records which records it holds
// and which are durable.
//
// Checks, at every checkpoint request the worker writes:
// - `sequenceNumber` null (shard end): every record with base64 data the daemon sent to this
//   flusher's session reached it, and every record it was given is durable;
// - a position P: every record with base64 data the daemon sent to this flusher's session before
//   P reached the flusher and is durable (ignored ones count as durable; poison ones are skipped);
// - if P is a flusher record's: the one at P that is plain or the last user record of its aggregate
//   (the daemon's position covers the whole aggregate) has every record the flusher got up to it
//   durable.
// The checks use arrival order, not numeric order, so out-of-order sequence numbers cannot make
// them fire falsely; positions the daemon sent twice are ambiguous and not checked.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include <shardflow/flushers/base64.hpp>
#include <shardflow/kcl/mld_protocol.hpp>
#include <shardflow/kcl/mld_worker.hpp>

namespace {

using namespace shardflow;

struct held_record {
  std::string base;
  std::optional<std::uint64_t> sub;
  bool whole = true; // not a user record before the last of its aggregate
  bool durable = false;
};

// What the current flusher holds, in arrival order, and how it behaves.
struct ledger {
  std::vector<held_record> records;
  std::map<flush_token, std::size_t> index; // token -> place in `records`
  std::size_t capacity = 0;                 // 0: unlimited
  bool hold_last = false;                   // a partial flush keeps the newest pending token
  bool heartbeat_returns = false;           // heartbeats return what partial flushes held
  bool ignore_key_i = false;                // records with partition key "i" are ignored
  std::vector<flush_token> pending;
  unsigned incarnation = 0; // flushers made so far

  void durable(flush_token t) {
    const auto i = index.find(t);
    SHARDFLOW_FUZZ_CHECK(i != index.end());
    records[i->second].durable = true;
  }
};

class ledger_flusher final : public flusher {
public:
  explicit ledger_flusher(std::shared_ptr<ledger> l) : l_(std::move(l)) {
  }

  add_result add(const stream_record& x, flush_token t) override {
    if (l_->capacity != 0 && l_->pending.size() >= l_->capacity)
      return add_result::full;
    l_->index[t] = l_->records.size();
    l_->records.push_back(
      {x.sequence.base.to_string(), x.sequence.sub, !x.sequence.is_sub_record(), false});
    if (l_->ignore_key_i && x.partition_key == "i") {
      l_->records.back().durable = true;
      return add_result::ignored;
    }
    l_->pending.push_back(t);
    return add_result::added;
  }

  std::vector<flush_token> flush(flush_mode mode) override {
    std::vector<flush_token> out;
    std::vector<flush_token> kept;
    for (std::size_t i = 0; i < l_->pending.size(); ++i) {
      const bool keep = mode == flush_mode::partial && l_->hold_last && i + 1 == l_->pending.size();
      (keep ? kept : out).push_back(l_->pending[i]);
    }
    l_->pending = kept;
    for (auto t : out)
      l_->durable(t);
    return out;
  }

  std::vector<flush_token> heartbeat() override {
    if (!l_->heartbeat_returns)
      return {};
    auto out = std::move(l_->pending);
    l_->pending.clear();
    for (auto t : out)
      l_->durable(t);
    return out;
  }

private:
  std::shared_ptr<ledger> l_;
};

// The value of `"key":` in a checkpoint request the worker wrote: a string, or nothing for null;
// `found` says whether the key is there at all.
std::optional<std::string> field(const std::string& line, const std::string& key, bool& found) {
  const auto at = line.find("\"" + key + "\":");
  found = at != std::string::npos;
  if (!found)
    return std::nullopt;
  const auto value = at + key.size() + 3;
  if (line.compare(value, 4, "null") == 0)
    return std::nullopt;
  if (line[value] != '"') { // a number (subSequenceNumber)
    const auto end = line.find_first_of(",}", value);
    return line.substr(value, end - value);
  }
  const auto end = line.find('"', value + 1);
  return line.substr(value + 1, end - value - 1);
}

// Every record the daemon sent in the session, in order, and how often each position came.
struct sent_log {
  struct sent_record {
    std::string base;
    std::optional<std::string> sub;
    bool valid; // base64 data: a record the flusher must get (else poison)
  };
  std::vector<sent_record> records;
  std::map<std::string, unsigned> count; // by "base" and by "base/sub"
  std::size_t first_of_ledger = 0;       // the first record the current flusher could get

  static std::string key_of(const std::string& base, const std::optional<std::string>& sub) {
    return sub ? base + "/" + *sub : base;
  }
  bool unique(const std::string& key) const {
    const auto c = count.find(key);
    return c != count.end() && c->second == 1;
  }
};

void dump(const std::string& line, const ledger& l) {
  std::fprintf(stderr, "checkpoint %s covers a record that is not durable; the flusher got:\n",
               line.c_str());
  for (const auto& r : l.records)
    std::fprintf(stderr, "  %s/%s%s%s\n", r.base.c_str(),
                 r.sub ? std::to_string(*r.sub).c_str() : "-", r.whole ? "" : " (inside)",
                 r.durable ? " durable" : "");
}

// Every valid record the daemon sent (once) before the one at `p_key` (all of them when null)
// reached the flusher and is durable: none was dropped on the way, none is still pending.
void check_sent_before(const std::string& line, const ledger& l, const sent_log& sent,
                       const std::string* p_key, bool with_sub) {
  auto key = [&](const std::string& base, const std::optional<std::string>& sub) {
    return sent_log::key_of(base, with_sub ? sub : std::nullopt);
  };
  for (std::size_t i = sent.first_of_ledger; i < sent.records.size(); ++i) {
    const auto& d = sent.records[i];
    const auto d_key = key(d.base, d.sub);
    if (p_key && d_key == *p_key)
      return;
    if (!d.valid || !sent.unique(d_key))
      continue;
    bool got = false;
    bool durable = true;
    for (const auto& r : l.records) {
      if (key(r.base, r.sub ? std::optional<std::string>{std::to_string(*r.sub)} : std::nullopt)
          != d_key)
        continue;
      got = true;
      durable = durable && r.durable;
    }
    if (!got || !durable) {
      std::fprintf(stderr, "record %s: %s\n", d_key.c_str(), got ? "not durable" : "never flushed");
      dump(line, l);
    }
    SHARDFLOW_FUZZ_CHECK(got && durable);
  }
}

// The durability checker, run on every checkpoint request.
void check_checkpoint(const std::string& line, const ledger& l, const sent_log& sent) {
  bool v2 = false;
  bool v1 = false;
  auto seq = field(line, "sequenceNumber", v2);
  if (!v2)
    seq = field(line, "checkpoint", v1);
  SHARDFLOW_FUZZ_CHECK(v1 || v2);
  if (!seq) { // shard end: everything
    for (const auto& r : l.records)
      SHARDFLOW_FUZZ_CHECK(r.durable);
    return check_sent_before(line, l, sent, nullptr, v2);
  }
  bool has_sub = false;
  const auto sub_text = v2 ? field(line, "subSequenceNumber", has_sub) : std::nullopt;
  const auto p_key = sent_log::key_of(*seq, sub_text);
  if (!sent.unique(p_key))
    return; // the daemon sent P twice (or never): which record is meant cannot be told
  check_sent_before(line, l, sent, &p_key, sub_text.has_value());
  // The user records of an aggregate share P: the record at P that is plain or ends its aggregate
  // has only durable records up to it.
  auto at_p = [&](const held_record& r) {
    return r.base == *seq && (!sub_text || (r.sub && std::to_string(*r.sub) == *sub_text));
  };
  std::size_t durable_prefix = 0;
  while (durable_prefix < l.records.size() && l.records[durable_prefix].durable)
    ++durable_prefix;
  bool seen = false;
  for (std::size_t k = 0; k < l.records.size(); ++k) {
    if (!at_p(l.records[k]))
      continue;
    if (k < durable_prefix && l.records[k].whole)
      return;
    seen = true;
  }
  if (seen)
    dump(line, l);
  SHARDFLOW_FUZZ_CHECK(!seen); // else P is a poison record's: nothing more to check
}

class fuzz_daemon final : public mld::line_io {
public:
  fuzz_daemon(std::string_view input, std::shared_ptr<const ledger> l)
    : input_(input), ledger_(std::move(l)) {
  }

  std::optional<std::string_view> read_line() override {
    if (!reply_.empty()) {
      const bool fuzzed = next_line_is_reply();
      line_ = fuzzed ? std::string{take_line()} : reply_;
      reply_.clear();
      return std::string_view{line_};
    }
    if (done_)
      return std::nullopt;
    line_ = std::string{take_line()};
    if (ledger_->incarnation != incarnation_) { // a new flusher: it gets only what comes next
      incarnation_ = ledger_->incarnation;
      sent_.first_of_ledger = sent_.records.size();
    }
    count_positions();
    return std::string_view{line_};
  }

  bool write_line(const std::string& line) override {
    if (line.find("\"action\":\"checkpoint\"") != std::string::npos) {
      check_checkpoint(line, *ledger_, sent_);
      reply_ = line.substr(0, line.size() - 1) + ",\"error\":null}";
    }
    return true;
  }

private:
  void count_positions() {
    mld::message m;
    if (!parser_.parse(line_, m) || m.what != mld::message::kind::process_records)
      return;
    std::string decoded;
    for (const auto& r : m.records) {
      auto& d = sent_.records.emplace_back();
      d.base = std::string{r.sequence_number};
      if (r.sub_sequence_number)
        d.sub = std::to_string(*r.sub_sequence_number);
      d.valid = !r.data_null && base64::decode(r.data_base64, decoded);
      ++sent_.count[d.base];
      if (d.sub)
        ++sent_.count[sent_log::key_of(d.base, d.sub)];
    }
  }

  bool next_line_is_reply() const {
    if (done_)
      return false;
    const auto end = input_.find('\n');
    return input_.substr(0, end).find("\"action\":\"checkpoint\"") != std::string_view::npos;
  }

  std::string_view take_line() {
    const auto end = input_.find('\n');
    const auto line = input_.substr(0, end);
    if (end == std::string_view::npos)
      done_ = true;
    else
      input_.remove_prefix(end + 1);
    return line;
  }

  std::string_view input_;
  std::shared_ptr<const ledger> ledger_;
  mld::message_parser parser_;
  sent_log sent_;
  unsigned incarnation_ = 0;
  std::string line_;
  std::string reply_;
  bool done_ = false;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const auto config = data[0];
  auto l = std::make_shared<ledger>();
  mld::worker_config cfg;
  cfg.make_flusher = [l, config](const shard_id&) {
    const auto incarnation = l->incarnation + 1;
    *l = ledger{};
    l->incarnation = incarnation;
    l->capacity = config & 3;
    l->hold_last = (config & 4) != 0 && l->capacity == 0; // a full batch must be able to drain
    l->heartbeat_returns = (config & 8) != 0;
    l->ignore_key_i = (config & 16) != 0;
    return std::make_unique<ledger_flusher>(l);
  };
  cfg.batch.flush_interval = std::chrono::milliseconds{(config & 32) != 0 ? 1000 : 0};
  cfg.batch.checkpoint_interval = std::chrono::milliseconds{(config & 64) != 0 ? 1000 : 0};
  cfg.erlmld_magics = (config & 128) == 0;
  cfg.checkpoint_backoff = std::chrono::milliseconds{0};
  auto clock = std::make_shared<std::chrono::steady_clock::time_point>();
  cfg.now = [clock] { return *clock += std::chrono::milliseconds{300}; };
  cfg.sleep = [clock](std::chrono::milliseconds d) { *clock += d; };
  cfg.log = [](mld::log_level, std::string_view) {};
  fuzz_daemon daemon{{reinterpret_cast<const char*>(data) + 1, size - 1}, l};
  mld::worker w{daemon, cfg};
  (void) w.run();
  return 0;
}
