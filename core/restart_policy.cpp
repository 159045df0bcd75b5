#include <shardflow/core/restart_policy.hpp>

#include <algorithm>

namespace shardflow {

restart_decision decide_restart(restart_type type, exit_kind how) noexcept {
  switch (type) {
    case restart_type::permanent:
      return restart_decision::restart;
    case restart_type::transient:
      return how == exit_kind::abnormal ? restart_decision::restart : restart_decision::keep;
    case restart_type::temporary:
      return restart_decision::remove;
  }
  return restart_decision::remove;
}

std::chrono::nanoseconds backoff_delay(const backoff_spec& spec, unsigned n,
                                       double uniform01) noexcept {
  using std::chrono::nanoseconds;
  if (spec.min.count() <= 0)
    return nanoseconds{0};
  const auto max = std::max(spec.max, spec.min);
  double base = static_cast<double>(max.count());
  if (n < 30)
    base = std::min(base, static_cast<double>(spec.min.count()) * static_cast<double>(1u << n));
  const auto jitter = 1.0 + std::clamp(uniform01, 0.0, 1.0) * std::max(spec.random_factor, 0.0);
  return nanoseconds{static_cast<nanoseconds::rep>(base * jitter)};
}

bool restart_window::add(std::chrono::steady_clock::time_point now) {
  const auto t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  stamps_.erase(stamps_.begin(), std::find_if(stamps_.begin(), stamps_.end(),
                                              [&](std::int64_t s) { return s >= t - period_; }));
  stamps_.push_back(t);
  return static_cast<std::int64_t>(stamps_.size()) <= intensity_;
}

} // namespace shardflow
