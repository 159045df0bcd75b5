#include <shardflow/core/record_source.hpp>

#include <algorithm>

namespace shardflow {

record_source::~record_source() = default;

bool record_source::stopped() const {
  return false;
}

void record_source::release(const sequence_number&) {
  // nop: a replayable source keeps nothing
}

void record_source::on_readable(std::function<void()>) {
  // nop: the feeder polls
}

void replay_buffer::append(record_batch batch) {
  if (covered_ && !batch.empty() && batch.begin()->sequence <= *covered_) {
    // Durable already (a host that pushes again from before the checkpoint after a restart).
    auto keep = std::upper_bound(batch.begin(), batch.end(), *covered_,
                                 [](const sequence_number& x, const stream_record& y) {
                                   return x < y.sequence;
                                 });
    const auto dropped = static_cast<std::size_t>(keep - batch.begin());
    batch = batch.slice(dropped, batch.size() - dropped);
  }
  if (batch.empty())
    return;
  retained_ += batch.size();
  retained_bytes_ += payload_bytes(batch);
  batches_.push_back(std::move(batch));
}

void replay_buffer::rewind(const std::optional<sequence_number>& after) {
  batch_ = 0;
  offset_ = 0;
  if (!after)
    return;
  cover(*after);
  while (batch_ < batches_.size()) {
    const auto& b = batches_[batch_];
    if (b.back().sequence > *after) {
      auto first = std::upper_bound(b.begin(), b.end(), *after,
                                    [](const sequence_number& x, const stream_record& y) {
                                      return x < y.sequence;
                                    });
      offset_ = static_cast<std::size_t>(first - b.begin());
      return;
    }
    ++batch_;
  }
}

record_batch replay_buffer::read(std::size_t max) {
  if (batch_ >= batches_.size() || max == 0)
    return {};
  const auto& b = batches_[batch_];
  auto result = b.slice(offset_, max);
  offset_ += result.size();
  if (offset_ >= b.size()) {
    ++batch_;
    offset_ = 0;
  }
  return result;
}

bool replay_buffer::at_end() const {
  return closed_ && batch_ >= batches_.size();
}

void replay_buffer::cover(const sequence_number& upto) {
  if (!covered_ || *covered_ < upto)
    covered_ = upto;
}

void replay_buffer::release(const sequence_number& upto) {
  cover(upto);
  while (!batches_.empty()) {
    auto& front = batches_.front();
    if (front.back().sequence <= upto) {
      retained_ -= front.size();
      retained_bytes_ -= payload_bytes(front);
      batches_.pop_front();
      if (batch_ > 0) {
        --batch_;
      } else {
        offset_ = 0;
      }
      continue;
    }
    auto keep = std::upper_bound(front.begin(), front.end(), upto,
                                 [](const sequence_number& x, const stream_record& y) {
                                   return x < y.sequence;
                                 });
    const auto dropped = static_cast<std::size_t>(keep - front.begin());
    if (dropped > 0) {
      retained_ -= dropped;
      retained_bytes_ -= payload_bytes(front.slice(0, dropped));
      front = front.slice(dropped, front.size() - dropped);
      if (batch_ == 0)
        offset_ = offset_ > dropped ? offset_ - dropped : 0;
    }
    break;
  }
}

} // namespace shardflow
