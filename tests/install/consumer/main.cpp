// Uses the installed headers and libraries: a batch processor with a null flusher checkpoints at the
// last of ten records. Exit code 0 when it does.
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include <shardflow/core/batch_processor.hpp>
#include <shardflow/flushers/null_flusher.hpp>

int main() {
  using namespace shardflow;
  std::vector<stream_record> xs(10);
  for (std::uint64_t i = 0; i < xs.size(); ++i)
    xs[i].sequence.base = sequence_base{i};
  batch_processor p{"s", std::make_unique<null_flusher>(100), batch_config{},
                    std::chrono::steady_clock::now()};
  p.process(record_batch{std::move(xs)}, std::chrono::steady_clock::now());
  auto cp = p.shutdown(shutdown_reason::terminate, std::chrono::steady_clock::now());
  std::printf("consumer: checkpoint %s\n", cp ? to_string(*cp).c_str() : "none");
  return cp && cp->position && cp->position->base == sequence_base{9} ? 0 : 1;
}
