// abandon.cpp: see abandon.h.
#include "abandon.h"

#include <pthread.h>

#include <atomic>

namespace mi {

namespace {

pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
Segment* abandoned_first = nullptr;  // doubly linked through abandoned_next/prev
std::atomic<size_t> abandoned_n{0};

void unlink(Segment* s) {
  if (s->abandoned_prev != nullptr) s->abandoned_prev->abandoned_next = s->abandoned_next;
  else abandoned_first = s->abandoned_next;
  if (s->abandoned_next != nullptr) s->abandoned_next->abandoned_prev = s->abandoned_prev;
  s->abandoned_next = nullptr;
  s->abandoned_prev = nullptr;
  abandoned_n.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

void abandoned_push(Segment* segment) noexcept {
  pthread_mutex_lock(&abandoned_lock);
  segment->abandoned_prev = nullptr;
  segment->abandoned_next = abandoned_first;
  if (abandoned_first != nullptr) abandoned_first->abandoned_prev = segment;
  abandoned_first = segment;
  abandoned_n.fetch_add(1, std::memory_order_relaxed);
  pthread_mutex_unlock(&abandoned_lock);
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

size_t abandoned_count() noexcept { return abandoned_n.load(std::memory_order_relaxed); }

void abandoned_fork_prepare() noexcept { pthread_mutex_lock(&abandoned_lock); }
void abandoned_fork_parent() noexcept { pthread_mutex_unlock(&abandoned_lock); }
void abandoned_fork_child() noexcept {
  // The child has only the forking thread: a fresh lock is safe.
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  abandoned_lock = fresh;
}

}  // namespace mi
