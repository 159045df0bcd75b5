// core/fifo.hpp - a first-in first-out queue on one vector that allocates nothing until its first
// element (std::deque allocates a 512-byte node and its map even when empty, and every idle shard
// group held four of them: its supervisor's steps, the feeder's pushes, the replay buffer's and the
// checkpoint tracker's batches).
//
// Plain value type, not thread-safe, no failure modes beyond std::vector's (allocation). Popped
// elements are destroyed at once; their slots are reclaimed when the popped prefix outgrows the
// live part (each element is moved at most once per pop on average), and the vector is emptied,
// keeping its capacity, whenever the queue drains (`release` frees it).
#pragma once

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace shardflow {

/// A FIFO queue of `T` on one vector, with indexed access from the front.
template <class T>
class fifo {
public:
  using iterator = typename std::vector<T>::iterator;
  using const_iterator = typename std::vector<T>::const_iterator;

  /// Returns whether the queue holds nothing.
  bool empty() const noexcept {
    return head_ == items_.size();
  }

  /// Returns the number of elements.
  std::size_t size() const noexcept {
    return items_.size() - head_;
  }

  /// Returns the `i`-th element from the front (i < size()).
  T& operator[](std::size_t i) noexcept {
    return items_[head_ + i];
  }
  const T& operator[](std::size_t i) const noexcept {
    return items_[head_ + i];
  }

  /// Returns the oldest element (not empty).
  T& front() noexcept {
    return items_[head_];
  }
  const T& front() const noexcept {
    return items_[head_];
  }

  /// Returns the newest element (not empty).
  T& back() noexcept {
    return items_.back();
  }
  const T& back() const noexcept {
    return items_.back();
  }

  iterator begin() noexcept {
    return items_.begin() + static_cast<std::ptrdiff_t>(head_);
  }
  iterator end() noexcept {
    return items_.end();
  }
  const_iterator begin() const noexcept {
    return items_.begin() + static_cast<std::ptrdiff_t>(head_);
  }
  const_iterator end() const noexcept {
    return items_.end();
  }

  /// Appends `x` at the back.
  template <class... Ts>
  T& emplace_back(Ts&&... xs) {
    return items_.emplace_back(std::forward<Ts>(xs)...);
  }
  void push_back(T x) {
    items_.push_back(std::move(x));
  }

  /// Removes the oldest element (not empty).
  void pop_front() {
    items_[head_] = T{}; // release what it holds now
    if (++head_ == items_.size()) {
      clear();
    } else if (head_ >= 16 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  /// Exchanges the contents with `other`.
  void swap(fifo& other) noexcept {
    items_.swap(other.items_);
    std::swap(head_, other.head_);
  }

  /// Removes every element and frees the memory (for queues that are mostly empty between bursts).
  void release() noexcept {
    std::vector<T>{}.swap(items_);
    head_ = 0;
  }

  /// Removes every element; keeps the capacity.
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

private:
  std::vector<T> items_;
  std::size_t head_ = 0; // items_[0, head_) were popped
};

} // namespace shardflow
