// purge_list.cpp: see purge_list.h.
#include "purge_list.h"

#include <pthread.h>

#include <atomic>

#include "../common/options.h"
#include "../os/os.h"
#include "segment.h"
#include "segment_internal.h"

namespace mi {

namespace {

pthread_mutex_t purge_list_lock = PTHREAD_MUTEX_INITIALIZER;
Segment* purge_list_first = nullptr;
Segment* purge_list_last = nullptr;
std::atomic<size_t> purge_list_count{0};
// No purge on the list is due before this (ms; may be early, never late):
// lets segments_try_purge return without the lock most of the time.
std::atomic<int64_t> purge_list_due{INT64_MAX};
// A walk of the list in steps (segments_try_purge without visit_all): the
// segments still to visit before purge_list_due holds again; while it is
// not 0 every call goes on with the walk. Under the list lock.
size_t purge_walk_left = 0;

void purge_due_lower(int64_t expire) {
  int64_t cur = purge_list_due.load(std::memory_order_relaxed);
  while (expire < cur && !purge_list_due.compare_exchange_weak(cur, expire, std::memory_order_relaxed)) {
  }
}

// pre: purge_list_lock held, s not on the list. At the tail: the list is in
// the order of the last visit, so a walk in steps takes the segments it has
// not seen for longest first.
void purge_list_append(Segment* s) {
  s->purge_next = nullptr;
  s->purge_prev = purge_list_last;
  if (purge_list_last != nullptr) purge_list_last->purge_next = s;
  else purge_list_first = s;
  purge_list_last = s;
  s->in_purge_queue.store(true, std::memory_order_relaxed);
  purge_list_count.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// pre: the segment lock is held. in_purge_queue changes under the list lock
// only: a walk of segments_try_purge takes a segment off and puts it back at
// the tail without its segment lock, so the check without the list lock may
// see it off the list for that moment (then the list lock is taken, and the
// walk has put it back: nothing lost) — hence an atomic.
void purge_list_add(Segment* s) {
  purge_due_lower(purge_expire_of(s));
  if (s->in_purge_queue.load(std::memory_order_relaxed)) return;  // already on it: no need for the list lock
  pthread_mutex_lock(&purge_list_lock);
  if (!s->in_purge_queue.load(std::memory_order_relaxed)) purge_list_append(s);
  pthread_mutex_unlock(&purge_list_lock);
}

namespace {

// pre: purge_list_lock held
void purge_list_unlink(Segment* s) {
  if (!s->in_purge_queue.load(std::memory_order_relaxed)) return;
  if (s->purge_prev != nullptr) s->purge_prev->purge_next = s->purge_next;
  else purge_list_first = s->purge_next;
  if (s->purge_next != nullptr) s->purge_next->purge_prev = s->purge_prev;
  else purge_list_last = s->purge_prev;
  s->purge_next = s->purge_prev = nullptr;
  s->in_purge_queue.store(false, std::memory_order_relaxed);
  purge_list_count.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

void purge_list_remove(Segment* s) {
  pthread_mutex_lock(&purge_list_lock);
  purge_list_unlink(s);
  pthread_mutex_unlock(&purge_list_lock);
}

bool purge_list_contains(const Segment* s) {
  pthread_mutex_lock(&purge_list_lock);
  bool found = false;
  for (const Segment* x = purge_list_first; x != nullptr; x = x->purge_next) {
    if (x == s) {
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&purge_list_lock);
  return found;
}

constexpr uint8_t PURGE_BACKOFF_MAX = 3;  // intervals at most 8x longer (200 ms at the defaults)

void purge_interval_start(Segment* s, int64_t now) {
  long delay = option_get(mi_option_purge_delay);
  if (delay < 0) delay = 0;
  // a large segment's times 2^LARGE_PURGE_SHIFT more (segment.h says why)
  const unsigned shift = s->purge_backoff + ((s->page_kind == PageKind::large) ? LARGE_PURGE_SHIFT : 0u);
  purge_expire_set(s, now + (static_cast<int64_t>(delay) << shift));
  s->purge_deadline_ms =
      now + ((static_cast<int64_t>(delay) * option_get_clamp(mi_option_arena_purge_mult, 1, 1000)) << shift);
}

void purge_backoff_adapt(Segment* s) {
  if (s->purge_regretted) {
    if (s->purge_backoff < PURGE_BACKOFF_MAX) s->purge_backoff++;
  } else if (s->purge_backoff > 0) {
    s->purge_backoff--;
  }
  s->purge_regretted = false;
}

namespace {

// Cheap test: is any page purge scheduled at all?
bool purge_list_empty() { return purge_list_count.load(std::memory_order_relaxed) == 0; }

}  // namespace

int64_t segments_next_purge_in_ms() noexcept {
  if (purge_list_empty()) return -1;
  int64_t now = os_clock_ms();
  int64_t best = -1;
  pthread_mutex_lock(&purge_list_lock);
  for (const Segment* s = purge_list_first; s != nullptr; s = s->purge_next) {
    const int64_t expire = purge_expire_of(s);
    int64_t in = (expire > now) ? expire - now : 0;
    if (best < 0 || in < best) best = in;
  }
  pthread_mutex_unlock(&purge_list_lock);
  return best;
}

// Segments a call without visit_all looks at: the allocation slow path
// calls it every 32 calls while a purge may be due, and a purge is nearly
// always due somewhere in a busy thread's segments (each free of a page puts
// its segment's purge off, but never the time the list is due): a walk of
// every segment each time cost 2 000 instructions a call with a hundred
// segments (tools/bench/mixed_log: 5% of all its instructions).
constexpr size_t PURGE_WALK_STEP = 8;

void segments_try_purge(bool force, bool visit_all) noexcept {
  if (purge_list_empty()) return;
  int64_t now = os_clock_ms();
  if (!force && now < purge_list_due.load(std::memory_order_relaxed)) return;
  pthread_mutex_lock(&purge_list_lock);
  const size_t count = purge_list_count.load(std::memory_order_relaxed);
  const bool whole = force || visit_all;
  if (whole || purge_walk_left == 0 || purge_walk_left > count) {
    // a new walk: the due time is recomputed from what the walk leaves on
    // the list (and lowered by what is added meanwhile)
    purge_walk_left = count;
    purge_list_due.store(INT64_MAX, std::memory_order_relaxed);
  }
  size_t budget = whole ? count + 8 : PURGE_WALK_STEP;  // each segment at most once
  Segment* s = purge_list_first;
  while (s != nullptr && budget > 0 && purge_walk_left > 0) {
    budget--;
    purge_walk_left--;
    // purge_expire_ms without the segment lock: a hint (commit_mask_of says why)
    const int64_t expire = purge_expire_of(s);
    purge_list_unlink(s);
    if ((force || now >= expire) && segment_try_lock(s)) {
      pthread_mutex_unlock(&purge_list_lock);
      // its owner waits for us if it needs the segment
      bool stays = segment_purge_due_pages(s, force, now);
      if (stays) purge_list_add(s);  // takes the list lock itself
      segment_unlock(s);
      pthread_mutex_lock(&purge_list_lock);
    } else {
      purge_list_append(s);  // stays: behind the others, and remember when it is due
      purge_due_lower(expire);
    }
    s = purge_list_first;  // the list may have changed meanwhile
  }
  // a walk not finished yet: the next call goes on with it
  if (purge_walk_left > 0 && purge_list_count.load(std::memory_order_relaxed) > 0) purge_due_lower(now);
  else purge_walk_left = 0;
  pthread_mutex_unlock(&purge_list_lock);
}

void purge_list_fork_prepare() { pthread_mutex_lock(&purge_list_lock); }
void purge_list_fork_parent() { pthread_mutex_unlock(&purge_list_lock); }
void purge_list_fork_child() {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  purge_list_lock = fresh;
}

}  // namespace mi
