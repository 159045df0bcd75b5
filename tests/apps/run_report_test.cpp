#include "apps/shardflow/run_report.hpp"

#include <catch2/catch.hpp>

using namespace shardflow;
using namespace shardflow::cli;
using namespace std::chrono_literals;

namespace {

shard_view view_of(const std::string& id, std::uint64_t input_bytes) {
  shard_view v;
  v.id = id;
  v.meter = std::make_shared<flusher_meter>();
  v.input_bytes = input_bytes;
  return v;
}

} // namespace

SCENARIO("a shard's view follows the runtime's meters: checkpoint, end, restarts, outcome",
         "[apps][run_report]") {
  shard_meters m;
  auto v = view_of("shard-00000", 1000);
  const auto t0 = std::chrono::steady_clock::now();
  v.update(m, t0);
  CHECK_FALSE(v.checkpoint); // nothing acknowledged yet
  CHECK(v.lag_bytes() == 1000);
  CHECK(v.last_checkpoint_change == t0);
  m.acked_position = 400;
  m.restarts = 2;
  v.update(m, t0 + 1s);
  CHECK(v.checkpoint == std::optional<std::uint64_t>{400});
  CHECK(v.lag_bytes() == 600);
  CHECK(v.restarts() == 2);
  CHECK(v.last_checkpoint_change == t0 + 1s);
  v.update(m, t0 + 2s); // the checkpoint did not move
  CHECK(v.last_checkpoint_change == t0 + 1s);
  m.acked_end = true;
  m.outcome = shard_outcome::ended;
  v.update(m, t0 + 3s);
  CHECK(v.ended);
  CHECK(v.lag_bytes() == 0);
  CHECK(v.outcome == shard_outcome::ended);
}

SCENARIO("the JSON summary gives each shard's outcome", "[apps][run_report]") {
  shard_meters a;
  a.acked_position = 10;
  a.acked_end = true;
  a.outcome = shard_outcome::ended;
  shard_meters b;
  b.outcome = shard_outcome::gave_up;
  b.restarts = 10;
  auto va = view_of("shard-00000", 20);
  auto vb = view_of("shard-00001", 30);
  const auto now = std::chrono::steady_clock::now();
  va.update(a, now);
  vb.update(b, now);
  const auto json = summary_json({va, vb}, 1.5, 1, {"shard shard-00001 gave up"}, 0);
  CHECK_THAT(json, Catch::Contains(R"("id":"shard-00000","records":0,"bytes":0,"flushes":0,)"
                                   R"("checkpoint":10,"ended":true,"outcome":"ended")"));
  CHECK_THAT(json, Catch::Contains(
                     R"("checkpoint":null,"ended":false,"outcome":"gave_up","stopped_at":null,)"
                     R"("lag_bytes":30,"restarts":10)"));
  CHECK_THAT(json, Catch::Contains(R"("exit_code":1)"));
  const auto prom = prometheus_text({va, vb});
  CHECK_THAT(prom, Catch::Contains("shardflow_restarts_total{shard=\"shard-00001\"} 10"));
  CHECK_THAT(prom, Catch::Contains("shardflow_checkpoint_offset_bytes{shard=\"shard-00000\"} 10"));
}

SCENARIO("a run is ready once every shard started and none gave up", "[apps][run_report]") {
  shard_meters a;
  shard_meters b;
  auto va = view_of("shard-00000", 20);
  auto vb = view_of("shard-00001", 30);
  const auto now = std::chrono::steady_clock::now();
  auto both = [&] {
    va.update(a, now);
    vb.update(b, now);
    return readiness_of({va, vb});
  };
  auto r = both();
  CHECK_FALSE(r.ready);
  CHECK(r.why == "not ready: 0 of 2 shards started");
  a.generation = 1;
  r = both();
  CHECK_FALSE(r.ready);
  CHECK(r.why == "not ready: 1 of 2 shards started");
  b.generation = 3;
  r = both();
  CHECK(r.ready);
  CHECK(r.why == "ready: 2 shards started");
  b.outcome = shard_outcome::gave_up;
  r = both();
  CHECK_FALSE(r.ready);
  CHECK(r.why == "not ready: shard shard-00001 gave up after its restarts");
  CHECK(readiness_of({va}).why == "ready: 1 shard started");
}

SCENARIO("the build info metric names the version", "[apps][run_report]") {
  CHECK_THAT(build_info_text("1.2.3"),
             Catch::Contains("# TYPE shardflow_build_info gauge\n"
                             "shardflow_build_info{version=\"1.2.3\"} 1\n"));
}

SCENARIO("a progress line is cut to the terminal's width, by characters", "[apps][run_report]") {
  CHECK(cut_to_columns("abcdef", 4) == "abcd");
  CHECK(cut_to_columns("abcdef", 6) == "abcdef");
  CHECK(cut_to_columns("abcdef", 0) == "abcdef");
  CHECK(cut_to_columns("ab  cd  ef", 9) == "ab  cd"); // whole fields: "ef" would be cut
  CHECK(cut_to_columns("ab  cd  ef", 7) == "ab  cd");
  CHECK(cut_to_columns("ab  cd  ef", 5) == "ab");
  CHECK(cut_to_columns("ab  cd  ef", 10) == "ab  cd  ef");
  // Each mark is three bytes and one column: a cut never splits one.
  const std::string marks = "ab\u2581\u2582\u2583c";
  CHECK(cut_to_columns(marks, 3) == "ab\u2581");
  CHECK(cut_to_columns(marks, 5) == "ab\u2581\u2582\u2583");
  CHECK(cut_to_columns(marks, 6) == marks);
}

SCENARIO("a shard stopped at bad input is reported where it stopped, not as ended",
         "[apps][run_report]") {
  shard_meters a;
  a.acked_position = 10;
  a.acked_end = true;
  a.outcome = shard_outcome::ended;
  shard_meters b;
  b.acked_position = 5;
  b.outcome = shard_outcome::stopped;
  auto va = view_of("shard-00000", 10);
  auto vb = view_of("shard-00001", 30);
  const auto now = std::chrono::steady_clock::now();
  va.update(a, now);
  vb.update(b, now);
  vb.stopped_at = "s/shard-00001.ndjson:17 (not a JSON object)";
  CHECK(state_of(va) == "ended");
  CHECK(state_of(vb) == "stopped at s/shard-00001.ndjson:17 (not a JSON object)");
  const auto table = summary_table({va, vb}, 1.0, false, 1);
  CHECK_THAT(table, Catch::Contains("stopped at s/shard-00001.ndjson:17 (not a JSON object)\n"));
  CHECK_THAT(table, Catch::Contains("0 records (0 B)") && Catch::Contains("0 flushes")
                      && Catch::Contains("0 restarts; 1 of 2 shards at their end; 1 stopped at "
                                         "bad input; 1 dead letter\n"));
  const auto json = summary_json({va, vb}, 1.0, 3, {}, 0);
  CHECK_THAT(json,
             Catch::Contains(R"("ended":false,"outcome":"stopped",)"
                             R"x("stopped_at":"s/shard-00001.ndjson:17 (not a JSON object)",)x"
                             R"("lag_bytes":25)"));
  CHECK_THAT(json, Catch::Contains(R"("outcome":"ended","stopped_at":null,"lag_bytes":0)"));
}

SCENARIO("a rerun of a stream processed already says so", "[apps][run_report]") {
  shard_meters m;
  m.acked_position = 10;
  m.acked_end = true;
  m.outcome = shard_outcome::ended;
  auto v = view_of("shard-00000", 10);
  v.update(m, std::chrono::steady_clock::now());
  CHECK_THAT(summary_table({v}, 1.0, false, 0),
             Catch::Contains("1 of 1 shard at their end; nothing after their checkpoints (the "
                             "stream was processed already)\n"));
  v.meter->records = 3; // a run that did process records says nothing of the kind
  CHECK_THAT(summary_table({v}, 1.0, false, 0),
             !Catch::Contains("nothing after their checkpoints"));
}

SCENARIO("a shard stopped at a checkpoint beyond its truncated file is not ended, whatever an "
         "earlier run's end marker says",
         "[apps][run_report]") {
  shard_meters m;
  m.acked_position = 15138;
  m.acked_end = true; // the end marker of the run before the file was truncated
  m.outcome = shard_outcome::stopped;
  auto v = view_of("shard-00000", 500);
  v.update(m, std::chrono::steady_clock::now());
  v.stopped_at = "m2/shard-00000.ndjson (checkpoint beyond the end of the file)";
  CHECK_FALSE(v.at_end());
  CHECK(state_of(v) == "stopped at m2/shard-00000.ndjson (checkpoint beyond the end of the file)");
  const auto table = summary_table({v}, 1.0, false, 0);
  CHECK_THAT(table, Catch::Contains("0 of 1 shard at their end; 1 stopped at bad input\n"));
  const auto json = summary_json({v}, 1.0, 3, {}, 0);
  CHECK_THAT(json, Catch::Contains(R"("ended":false,"outcome":"stopped","stopped_at":"m2/)"));
  CHECK_THAT(json, Catch::Contains(R"("ended":0,"not_started":0,)"));
}

SCENARIO("--bad-input dead-letter is offered only for a malformed or over-long line",
         "[apps][run_report]") {
  CHECK(dead_letter_applies("s/shard-00001.ndjson:17 (not a JSON object)"));
  CHECK(dead_letter_applies("s/x:y/shard-00001.ndjson:3 (longer than 16777216 bytes)"));
  CHECK(dead_letter_applies("s/shard-00001.ndjson:11 (not valid JSON (improper structure))"));
  CHECK_FALSE(dead_letter_applies("s/a (b):1/shard-00001.ndjson (truncated (x))"));
  CHECK_FALSE(dead_letter_applies("s/shard-00001.ndjson:51 (the file ends in the middle of a line)"));
  CHECK_FALSE(dead_letter_applies("s/shard-00001.ndjson (truncated or replaced while being read)"));
  CHECK_FALSE(dead_letter_applies("s/shard-00001.ndjson (checkpoint beyond the end of the file)"));
  CHECK_FALSE(dead_letter_applies("no reason at all"));
}

SCENARIO("a run stopped on a signal before it started every shard lists the unstarted ones",
         "[apps][run_report]") {
  shard_meters a;
  a.acked_position = 10;
  a.generation = 1;
  a.outcome = shard_outcome::stopped;
  auto va = view_of("shard-00000", 30);
  va.update(a, std::chrono::steady_clock::now());
  auto vb = view_of("shard-00001", 40);
  vb.not_started = true;
  CHECK(state_of(vb) == "not started");
  CHECK(readiness_of({va, vb}).why == "not ready: 1 of 2 shards started");
  const auto table = summary_table({va, vb}, 1.0, true, 0);
  CHECK_THAT(table, Catch::Contains("not started\n"));
  CHECK_THAT(table, Catch::Contains("0 of 2 shards at their end; 1 not started; stopped on a "
                                    "signal, every started shard checkpointed (a rerun processes "
                                    "the rest)\n"));
  const auto json = summary_json({va, vb}, 1.0, 0, {}, 0, true);
  CHECK_THAT(json, Catch::Contains(R"({"exit_code":0,"stopped_on_signal":true,)"));
  CHECK_THAT(json, Catch::Contains(R"("lag_bytes":60,"ended":0,"not_started":1,)"));
  CHECK_THAT(json, Catch::Contains(R"("ended":false,"outcome":"not_started","stopped_at":null,)"
                                   R"("lag_bytes":40)"));
  // Without a signal the table says nothing of one.
  CHECK_THAT(summary_table({va}, 1.0, false, 0), !Catch::Contains("signal"));
}

SCENARIO("the progress line counts in words that agree with the number", "[apps][run_report]") {
  auto v = view_of("shard-00000", 10);
  v.meter->records = 1;
  run_totals now = totals_of({v});
  CHECK_THAT(progress_line({v}, now, run_totals{}, 1.0, 1.0), Catch::Contains("] 1 record  "));
  v.meter->records = 2;
  now = totals_of({v});
  CHECK_THAT(progress_line({v}, now, run_totals{}, 1.0, 1.0), Catch::Contains("] 2 records  "));
}
