#include <shardflow/core/checkpoint_outbox.hpp>

#include <algorithm>
#include <utility>

namespace shardflow {

checkpoint_outbox::checkpoint_outbox(checkpoint_outbox_config cfg) : cfg_(cfg) {
  // nop
}

checkpoint_outbox::step checkpoint_outbox::offer(checkpoint cp) {
  if (fenced_)
    return std::nullopt;
  if (cp.position)
    waiting_ = std::move(cp); // supersedes an older position still waiting
  else if (!end_offered_)
    end_offered_ = waiting_end_ = true; // once: an end marker offered again is already in line
  return pump();
}

checkpoint_outbox::step checkpoint_outbox::ack() {
  if (fenced_ || !in_flight_)
    return std::nullopt;
  in_flight_.reset();
  attempt_ = 0;
  ++acked_;
  return pump();
}

checkpoint_outbox::step checkpoint_outbox::failed(time_point now) {
  if (fenced_ || !in_flight_)
    return std::nullopt;
  auto lost = std::move(*in_flight_);
  in_flight_.reset();
  if (!lost.position)
    waiting_end_ = true;
  else if (!waiting_)
    waiting_ = std::move(lost);
  ++failures_;
  outbox_action result;
  result.what = outbox_action::kind::retry;
  result.delay = std::min(cfg_.retry_max,
                          cfg_.retry_min * (std::int64_t{1} << std::min(attempt_, 20u)));
  result.attempt = ++attempt_;
  result.at = now + result.delay;
  result.ticket = ++ticket_;
  retry_at_ = result.at;
  backing_off_ = true;
  return result;
}

checkpoint_outbox::step checkpoint_outbox::retry(std::uint64_t ticket) {
  if (fenced_ || !backing_off_ || ticket != ticket_)
    return std::nullopt;
  backing_off_ = false;
  return pump();
}

checkpoint_outbox::step checkpoint_outbox::retry_due(time_point now) {
  if (fenced_ || !backing_off_ || now < retry_at_)
    return std::nullopt;
  return retry(ticket_);
}

void checkpoint_outbox::fence() noexcept {
  fenced_ = true;
  in_flight_.reset();
  waiting_.reset();
  waiting_end_ = false;
  backing_off_ = false;
}

void checkpoint_outbox::drop() noexcept {
  waiting_.reset();
  waiting_end_ = false;
  backing_off_ = false;
}

checkpoint_outbox::step checkpoint_outbox::close() {
  if (fenced_)
    return std::nullopt;
  closed_ = true;
  return pump();
}

checkpoint_outbox::step checkpoint_outbox::pump() {
  if (in_flight_ || backing_off_)
    return std::nullopt;
  outbox_action result;
  if (waiting_) {
    result.what = outbox_action::kind::save;
    in_flight_ = std::exchange(waiting_, std::nullopt);
  } else if (waiting_end_) {
    result.what = outbox_action::kind::save;
    waiting_end_ = false;
    in_flight_ = checkpoint{};
  } else if (closed_) {
    return result; // done
  } else {
    return std::nullopt;
  }
  result.cp = *in_flight_;
  result.ticket = ++saves_;
  deadline_ = now_ + cfg_.save_timeout;
  return result;
}

} // namespace shardflow
