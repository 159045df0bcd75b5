#include <shardflow/flushers/io_pool.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <shardflow/core/error.hpp>

namespace shardflow {

// -- io_pool -------------------------------------------------------------------------------------

struct io_pool::impl {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  bool stopping = false;
  std::vector<std::thread> threads;

  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> guard{mu};
        cv.wait(guard, [this] { return stopping || !jobs.empty(); });
        if (jobs.empty())
          return; // stopping and drained
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }
};

io_pool::io_pool(io_pool_config cfg) : impl_(std::make_unique<impl>()) {
  const auto n = std::max<std::size_t>(cfg.threads, 1);
  impl_->threads.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    impl_->threads.emplace_back([p = impl_.get()] { p->run(); });
}

io_pool::~io_pool() {
  {
    std::lock_guard<std::mutex> guard{impl_->mu};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads)
    t.join();
}

void io_pool::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> guard{impl_->mu};
    impl_->jobs.push_back(std::move(job));
  }
  impl_->cv.notify_one();
}

std::size_t io_pool::threads() const noexcept {
  return impl_->threads.size();
}

batch_sink::~batch_sink() {
  // nop
}

bool batch_sink::joins_batches() const noexcept {
  return false;
}

// -- pooled_flusher::lane ------------------------------------------------------------------------

namespace {

struct sealed_batch {
  std::string bytes;
  std::vector<flush_token> tokens;
};

} // namespace

/// What a shard's flusher shares with the pool thread writing its batches.
struct pooled_flusher::lane {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_ptr<batch_sink> sink;
  std::deque<sealed_batch> pending; // sealed, not yet started
  std::size_t in_flight = 0;        // pending plus the one being written
  std::vector<flush_token> done;    // written, not yet returned
  sealed_batch spare; // a written batch's buffers, emptied, for the next seal (no allocation)
  std::exception_ptr failure;
  bool scheduled = false; // a pool job is draining this lane
  bool cancelled = false; // the flusher is going away

  // Runs on a pool thread: writes the oldest pending batch, then queues itself again behind the
  // other lanes' jobs while batches are left (one shard cannot hold a thread).
  static void drain(const std::shared_ptr<lane>& self, io_pool* pool) {
    std::unique_lock<std::mutex> guard{self->mu};
    if (!self->cancelled && !self->failure && !self->pending.empty()) {
      // A sink that joins batches gets every batch waiting, in order, as one (one write, one
      // sync for all of them: the disk's latency is paid once however far it fell behind).
      std::vector<sealed_batch> taken;
      do {
        taken.push_back(std::move(self->pending.front()));
        self->pending.pop_front();
      } while (self->sink->joins_batches() && !self->pending.empty());
      guard.unlock();
      auto& batch = taken.front();
      for (std::size_t i = 1; i < taken.size(); ++i) {
        batch.bytes += taken[i].bytes;
        batch.tokens.insert(batch.tokens.end(), taken[i].tokens.begin(), taken[i].tokens.end());
      }
      std::exception_ptr failed;
      try {
        self->sink->write(batch.bytes, batch.tokens.size());
      } catch (...) {
        failed = std::current_exception();
      }
      guard.lock();
      self->in_flight -= taken.size();
      if (failed) {
        self->failure = failed;
        self->in_flight -= self->pending.size();
        self->pending.clear();
      } else {
        self->done.insert(self->done.end(), batch.tokens.begin(), batch.tokens.end());
        batch.bytes.clear();
        batch.tokens.clear();
        if (self->spare.bytes.capacity() < batch.bytes.capacity())
          self->spare = std::move(batch); // the bigger one: the batch may outgrow the other
      }
      self->cv.notify_all();
    }
    if (!self->cancelled && !self->failure && !self->pending.empty()) {
      guard.unlock();
      pool->submit([self, pool] { drain(self, pool); });
      return;
    }
    self->scheduled = false;
    self->cv.notify_all();
  }
};

// -- pooled_flusher ------------------------------------------------------------------------------

pooled_flusher::pooled_flusher(std::shared_ptr<io_pool> pool, std::unique_ptr<batch_sink> sink,
                               pooled_flusher_config cfg)
  : pool_(std::move(pool)), lane_(std::make_shared<lane>()), cfg_(cfg) {
  if (!pool_ || !sink)
    throw error{errc::flusher_failed, "pooled flusher: no I/O pool or no sink"};
  cfg_.batch_records = std::max<std::size_t>(cfg_.batch_records, 1);
  cfg_.max_in_flight = std::max<std::size_t>(cfg_.max_in_flight, 1);
  lane_->sink = std::move(sink);
  tokens_.reserve(cfg_.batch_records);
}

pooled_flusher::~pooled_flusher() {
  std::unique_lock<std::mutex> guard{lane_->mu};
  lane_->cancelled = true;
  lane_->cv.wait(guard, [this] { return !lane_->scheduled; });
  lane_->sink.reset();
}

add_result pooled_flusher::add(const stream_record& x, flush_token token) {
  if (tokens_.size() >= cfg_.batch_records) {
    if (in_flight() >= cfg_.max_in_flight)
      return add_result::full;
    seal();
  }
  lane_->sink->append(batch_, x);
  tokens_.push_back(token);
  return add_result::added;
}

std::vector<flush_token> pooled_flusher::flush(flush_mode mode) {
  if (mode == flush_mode::full) {
    if (!tokens_.empty()) {
      wait_below(cfg_.max_in_flight);
      seal();
    }
    wait_below(1);
    return reap();
  }
  auto result = reap();
  if (tokens_.empty())
    return result;
  if (tokens_.size() >= cfg_.batch_records)
    wait_below(cfg_.max_in_flight); // the `full` path: make room for one batch
  if (in_flight() < cfg_.max_in_flight)
    seal();
  auto more = reap();
  result.insert(result.end(), more.begin(), more.end());
  return result;
}

std::vector<flush_token> pooled_flusher::heartbeat() {
  return reap();
}

std::size_t pooled_flusher::in_flight() const {
  std::lock_guard<std::mutex> guard{lane_->mu};
  return lane_->in_flight;
}

void pooled_flusher::seal() {
  const auto bytes = batch_.size();
  sealed_batch batch{std::move(batch_), std::move(tokens_)};
  sealed_batch next; // the buffers of a batch written before, when there is one
  batch_.clear();
  tokens_.clear();
  bool schedule = false;
  {
    std::lock_guard<std::mutex> guard{lane_->mu};
    if (lane_->failure)
      std::rethrow_exception(lane_->failure);
    lane_->pending.push_back(std::move(batch));
    ++lane_->in_flight;
    schedule = !lane_->scheduled;
    lane_->scheduled = true;
    std::swap(next, lane_->spare);
  }
  batch_ = std::move(next.bytes);
  tokens_ = std::move(next.tokens);
  batch_.reserve(bytes);
  tokens_.reserve(cfg_.batch_records);
  if (schedule)
    pool_->submit([l = lane_, p = pool_.get()] { lane::drain(l, p); });
}

std::vector<flush_token> pooled_flusher::reap() {
  std::vector<flush_token> result;
  std::lock_guard<std::mutex> guard{lane_->mu};
  if (lane_->failure)
    std::rethrow_exception(lane_->failure);
  result.swap(lane_->done);
  return result;
}

void pooled_flusher::wait_below(std::size_t limit) {
  std::unique_lock<std::mutex> guard{lane_->mu};
  lane_->cv.wait(guard, [&] { return lane_->failure || lane_->in_flight < limit; });
  if (lane_->failure)
    std::rethrow_exception(lane_->failure);
}

flusher_factory pooled_flusher::factory(std::shared_ptr<io_pool> pool, batch_sink_factory sinks,
                                        pooled_flusher_config cfg) {
  return [pool, sinks, cfg](const shard_id& id) {
    return std::make_unique<pooled_flusher>(pool, sinks(id), cfg);
  };
}

} // namespace shardflow
