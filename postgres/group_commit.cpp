#include <shardflow/postgres/group_commit.hpp>

#include <algorithm>
#include <utility>

namespace shardflow::postgres {

group_commit::group_commit(group_writer write_group, group_commit_config cfg)
  : write_group_(std::move(write_group)), cfg_(cfg) {
  cfg_.writers = std::max<std::size_t>(cfg_.writers, 1);
  cfg_.max_batches = std::max<std::size_t>(cfg_.max_batches, 1);
}

bool group_commit::write(const std::string& batch) {
  job mine;
  mine.batch = &batch;
  std::unique_lock<std::mutex> guard{mu_};
  queued_.push_back(&mine);
  while (!mine.done) {
    if (writing_ < cfg_.writers && !queued_.empty())
      lead(guard);
    else
      cv_.wait(guard);
  }
  if (mine.error)
    std::rethrow_exception(mine.error);
  return !mine.failed;
}

std::size_t group_commit::groups() const {
  std::lock_guard<std::mutex> guard{mu_};
  return groups_;
}

std::size_t group_commit::queued() const {
  std::lock_guard<std::mutex> guard{mu_};
  return queued_.size();
}

void group_commit::lead(std::unique_lock<std::mutex>& guard) {
  const auto n = std::min(queued_.size(), cfg_.max_batches);
  std::vector<job*> group(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
  queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
  std::vector<const std::string*> batches;
  for (auto* j : group)
    batches.push_back(j->batch);
  ++writing_;
  guard.unlock();

  std::exception_ptr error;
  try {
    write_group_(batches);
  } catch (...) {
    error = std::current_exception();
  }
  guard.lock();
  --writing_;
  ++groups_;
  for (auto* j : group) {
    j->done = true;
    j->failed = error != nullptr;
    if (group.size() == 1)
      j->error = error;
  }
  cv_.notify_all();
}

} // namespace shardflow::postgres
