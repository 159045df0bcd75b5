// core/result.hpp - what parse and check functions return: a value, or the reason there is none.
//
//     result<flusher_spec> parse_flusher(std::string_view text);
//     auto spec = parse_flusher(text);
//     if (!spec)
//       return fail(fmt::format("--flusher: {}", spec.error()));
//     use(*spec);
//
// `status` is the same without a value, for functions that fill an out-parameter on a hot path.
// The reason is a sentence for the person who reads it (what was wrong and, where it helps, what
// would be right); it is empty exactly when there is a value.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace shardflow {

/// The reason a `result` or `status` has no value; make one with `fail`.
struct failure {
  std::string why;
};

/// Returns a failure with reason `why` (never empty: an empty reason becomes "failed").
inline failure fail(std::string why) {
  return failure{why.empty() ? std::string{"failed"} : std::move(why)};
}

/// A `T`, or the reason there is none.
template <class T>
class result {
public:
  result(T value) : value_(std::move(value)) {
    // nop
  }

  result(failure f) : error_(std::move(f.why)) {
    // nop
  }

  /// Returns whether there is a value.
  explicit operator bool() const noexcept {
    return value_.has_value();
  }

  /// The value; only when there is one.
  T& operator*() & noexcept {
    return *value_;
  }

  const T& operator*() const& noexcept {
    return *value_;
  }

  T&& operator*() && noexcept {
    return std::move(*value_);
  }

  T* operator->() noexcept {
    return &*value_;
  }

  const T* operator->() const noexcept {
    return &*value_;
  }

  /// Why there is no value; empty when there is one.
  const std::string& error() const noexcept {
    return error_;
  }

private:
  std::optional<T> value_;
  std::string error_;
};

/// Success, or the reason for failing.
class status {
public:
  /// Success.
  status() = default;

  status(failure f) : error_(std::move(f.why)) {
    // nop
  }

  /// Returns whether this is success.
  explicit operator bool() const noexcept {
    return error_.empty();
  }

  /// Why it failed; empty on success.
  const std::string& error() const noexcept {
    return error_;
  }

private:
  std::string error_;
};

} // namespace shardflow
