// abandon.cpp: see abandon.h.
#include "abandon.h"

#include <pthread.h>

#include <atomic>

#include "../os/os.h"

namespace mi {

constinit std::atomic<size_t> abandoned_unpurged_n{0};

namespace {

pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
Segment* abandoned_first = nullptr;  // doubly linked through abandoned_next/prev
std::atomic<size_t> abandoned_n{0};
// The earliest time a segment whose free blocks were not purged yet was
// abandoned (may be early, never late).
std::atomic<int64_t> unpurged_oldest_ms{INT64_MAX};

void link_first(Segment* segment) {
  segment->abandoned_prev = nullptr;
  segment->abandoned_next = abandoned_first;
  if (abandoned_first != nullptr) abandoned_first->abandoned_prev = segment;
  abandoned_first = segment;
  abandoned_n.fetch_add(1, std::memory_order_relaxed);
}

void unlink(Segment* s) {
  if (s->abandoned_prev != nullptr) s->abandoned_prev->abandoned_next = s->abandoned_next;
  else abandoned_first = s->abandoned_next;
  if (s->abandoned_next != nullptr) s->abandoned_next->abandoned_prev = s->abandoned_prev;
  s->abandoned_next = nullptr;
  s->abandoned_prev = nullptr;
  abandoned_n.fetch_sub(1, std::memory_order_relaxed);
  if (!s->abandoned_purged) abandoned_unpurged_n.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

void abandoned_push(Segment* segment) noexcept {
  const int64_t now = os_clock_ms();
  pthread_mutex_lock(&abandoned_lock);
  segment->abandoned_ms = now;
  segment->abandoned_purged = false;
  link_first(segment);
  abandoned_unpurged_n.fetch_add(1, std::memory_order_relaxed);
  if (now < unpurged_oldest_ms.load(std::memory_order_relaxed))
    unpurged_oldest_ms.store(now, std::memory_order_relaxed);
  pthread_mutex_unlock(&abandoned_lock);
}

void abandoned_push_purged(Segment* segment) noexcept {
  pthread_mutex_lock(&abandoned_lock);
  segment->abandoned_purged = true;
  link_first(segment);
  pthread_mutex_unlock(&abandoned_lock);
}

Segment* abandoned_pop_to_purge(int64_t before_ms) noexcept {
  if (abandoned_unpurged_n.load(std::memory_order_relaxed) == 0 ||
      unpurged_oldest_ms.load(std::memory_order_relaxed) > before_ms) {
    return nullptr;
  }
  pthread_mutex_lock(&abandoned_lock);
  Segment* found = nullptr;
  int64_t oldest = INT64_MAX;  // of the unpurged ones that stay
  for (Segment* s = abandoned_first; s != nullptr; s = s->abandoned_next) {
    if (s->abandoned_purged) continue;
    if (found == nullptr && s->abandoned_ms <= before_ms) {
      found = s;
    } else if (s->abandoned_ms < oldest) {
      oldest = s->abandoned_ms;
    }
  }
  if (found != nullptr) unlink(found);
  unpurged_oldest_ms.store(oldest, std::memory_order_relaxed);
  pthread_mutex_unlock(&abandoned_lock);
  return found;
}

Segment* abandoned_pop(bool (*accept)(const Segment*, const void*), const void* arg, size_t max_visits) noexcept {
  if (abandoned_n.load(std::memory_order_relaxed) == 0) return nullptr;
  pthread_mutex_lock(&abandoned_lock);
  Segment* found = nullptr;
  size_t visits = 0;
  for (Segment* s = abandoned_first; s != nullptr && visits < max_visits; s = s->abandoned_next, visits++) {
    if (accept == nullptr || accept(s, arg)) {
      found = s;
      break;
    }
  }
  if (found != nullptr) unlink(found);
  pthread_mutex_unlock(&abandoned_lock);
  return found;
}

bool abandoned_remove(Segment* segment) noexcept {
  pthread_mutex_lock(&abandoned_lock);
  // Still abandoned iff it is on the list: linked, or the first element.
  bool on_list = segment->thread_id.load(std::memory_order_acquire) == 0 &&
                 (segment->abandoned_prev != nullptr || abandoned_first == segment);
  if (on_list) unlink(segment);
  pthread_mutex_unlock(&abandoned_lock);
  return on_list;
}

bool abandoned_contains(const Segment* segment) noexcept {
  pthread_mutex_lock(&abandoned_lock);
  const bool on_list = segment->abandoned_prev != nullptr || abandoned_first == segment;
  pthread_mutex_unlock(&abandoned_lock);
  return on_list;
}

size_t abandoned_count() noexcept { return abandoned_n.load(std::memory_order_relaxed); }

void abandoned_fork_prepare() noexcept { pthread_mutex_lock(&abandoned_lock); }
void abandoned_fork_parent() noexcept { pthread_mutex_unlock(&abandoned_lock); }
void abandoned_fork_child() noexcept {
  // The child has only the forking thread: a fresh lock is safe.
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  abandoned_lock = fresh;
}

}  // namespace mi
