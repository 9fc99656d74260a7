// remote_batch.cpp: other threads' frees sent to a page's owner in batches
// (remote_batch.h says why and how).
#include "remote_batch.h"

#include <algorithm>

#include "../common/sanitizer.h"
#include "../segment/segment.h"
#include "free_list.h"
#include "heap.h"
#include "page.h"

namespace mi {

namespace {

// ---------------------------------------------------------------------------
// Live threads by id: where a batch for a thread goes
// ---------------------------------------------------------------------------
// Open addressing over a fixed table (no allocation), a few probes at most:
// a thread that finds no slot is not registered, and frees into its pages
// are not batched (remote_free finds no owner and pushes them singly).
constexpr size_t THREAD_TABLE_SIZE = 1024;
constexpr size_t THREAD_TABLE_PROBES = 16;
constexpr uintptr_t THREAD_TABLE_GONE = 1;  // a thread left the slot (a lookup probes past it)

struct ThreadEntry {
  std::atomic<uintptr_t> tid;  // 0: never used; THREAD_TABLE_GONE; else a live thread's id
  std::atomic<Tld*> tld;       // its thread-local data (null while the entry is being set or cleared)
};
constinit ThreadEntry thread_table[THREAD_TABLE_SIZE]{};

MI_ALWAYS_INLINE size_t thread_table_hash(uintptr_t tid) {
  return static_cast<size_t>((tid * 0x9E3779B97F4A7C15ull) >> 54);  // top 10 bits: THREAD_TABLE_SIZE
}
static_assert(THREAD_TABLE_SIZE == size_t{1} << 10);

void thread_table_add(uintptr_t tid, Tld* tld) {
  const size_t h = thread_table_hash(tid);
  for (size_t i = 0; i < THREAD_TABLE_PROBES; i++) {
    ThreadEntry& e = thread_table[(h + i) & (THREAD_TABLE_SIZE - 1)];
    uintptr_t t = e.tid.load(std::memory_order_relaxed);
    if ((t == 0 || t == THREAD_TABLE_GONE) && e.tid.compare_exchange_strong(t, tid, std::memory_order_acq_rel)) {
      e.tld.store(tld, std::memory_order_release);
      return;
    }
  }
}

void thread_table_remove(uintptr_t tid) {
  const size_t h = thread_table_hash(tid);
  for (size_t i = 0; i < THREAD_TABLE_PROBES; i++) {
    ThreadEntry& e = thread_table[(h + i) & (THREAD_TABLE_SIZE - 1)];
    const uintptr_t t = e.tid.load(std::memory_order_relaxed);
    if (t == tid) {
      e.tld.store(nullptr, std::memory_order_relaxed);
      e.tid.store(THREAD_TABLE_GONE, std::memory_order_release);
      return;
    }
    if (t == 0) return;
  }
}

// The thread-local data of the live thread `tid`, or null. (It may exit at
// any moment after: its data stays mapped and closed, remote_batch.h.)
Tld* thread_table_find(uintptr_t tid) {
  const size_t h = thread_table_hash(tid);
  for (size_t i = 0; i < THREAD_TABLE_PROBES; i++) {
    const ThreadEntry& e = thread_table[(h + i) & (THREAD_TABLE_SIZE - 1)];
    const uintptr_t t = e.tid.load(std::memory_order_acquire);
    if (t == tid) return e.tld.load(std::memory_order_acquire);
    if (t == 0) return nullptr;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------
// The page of the last remote free of a thread that has no heap yet.
thread_local Page* tls_remote_last_page = nullptr;

// A carrier's first word: the next carrier (bits 0..47) and how many block
// addresses follow the word (bits 48..63); the addresses fill the words after.
constexpr unsigned CARRIER_COUNT_SHIFT = 48;
constexpr uintptr_t CARRIER_NEXT_MASK = (uintptr_t{1} << CARRIER_COUNT_SHIFT) - 1;

MI_ALWAYS_INLINE uintptr_t* carrier_words(Block* b) { return reinterpret_cast<uintptr_t*>(b); }

// The page of a block a batch holds: a small or medium block start, in its
// segment's first unit. The page shift from the segment map, as free() takes
// it: the segment header's line is also the first page entry's, which its
// owner writes as it allocates.
MI_ALWAYS_INLINE Page* batch_block_page(Segment* segment, const Block* b) {
  return segment_page_at(segment, b, segmap_byte(b));
}

// A carrier and the blocks it lists (all of one page: a batch is a run of
// frees into one page), freed by the calling thread if it owns the page now:
// linked and put on the page at once, its entry written once, not once per
// block. Else each is passed on to the page's thread-free list (the thread
// that owned it when the blocks were freed exited, or this batch reached
// another thread under the same id or in the same thread data).
void receive_carrier(Block* c, const uintptr_t* w, size_t count) {
  Segment* segment = ptr_segment(c);
  Page* page = batch_block_page(segment, c);
  if ((page->xowner.load(std::memory_order_relaxed) & ~PAGE_FLAGS_MASK) == thread_id()) {
    Block* prev = c;
    for (size_t i = 1; i <= count; i++) {
      Block* b = reinterpret_cast<Block*>(w[i]);
      block_set_next(page, prev, b);
      prev = b;
    }
    page_receive_blocks(page, c, prev, count + 1);
    return;
  }
  for (size_t i = 1; i <= count; i++) free_block_mt(segment, page, reinterpret_cast<Block*>(w[i]));
  free_block_mt(segment, page, c);
}

// fn(carrier, its words, how many addresses follow the first) for each
// carrier of a list taken from a remote_in (the next one read before fn
// reuses the carrier's words).
template <class Fn>
void for_each_carrier(uintptr_t list, Fn fn) {
  Block* c = reinterpret_cast<Block*>(list > REMOTE_IN_CLOSED ? list : 0);
  while (c != nullptr) {
    const uintptr_t* w = carrier_words(c);
    const uintptr_t head = w[0];
    Block* next = reinterpret_cast<Block*>(head & CARRIER_NEXT_MASK);
    fn(c, w, static_cast<size_t>(head >> CARRIER_COUNT_SHIFT));
    c = next;
  }
}

void receive_list(uintptr_t list) { for_each_carrier(list, receive_carrier); }

// The batch held, sent to the page's owner; fewer than REMOTE_BATCH_MIN
// blocks, or an owner that exited or is not registered: each block to the
// page's thread-free list, as an unbatched free does.
void send(RemoteOut* out) {
  const uint32_t n = out->n;
  out->n = 0;
  // Set again by the page's next free: with no block held, the page may be
  // freed and set up again, for another size or another heap, at the same
  // address.
  out->limit = REMOTE_LIMIT_UNKNOWN;
  if (n == 0) return;
  Page* page = out->page;
  Tld* dest = (n >= REMOTE_BATCH_MIN) ? thread_table_find(out->owner) : nullptr;
  if (dest == nullptr) {
    for (uint32_t i = 0; i < n; i++) free_block_mt(page_segment(page), page, out->blocks[i]);
    return;
  }
  // The carriers: a block becomes one when the one before is full; each
  // holds the addresses of the blocks after it. `list` is the last carrier
  // made, `tail` the first, whose link is set to the owner's list below.
  // (ASan builds: only a block's first word is not poisoned while it is
  // free, the link's; every block carries itself)
  const size_t room_per_carrier = MI_ASAN ? 0 : page->block_size / sizeof(uintptr_t) - 1;
  Block* list = nullptr;
  Block* tail = nullptr;
  uintptr_t* c = nullptr;
  size_t count = 0;
  size_t room = 0;
  for (uint32_t i = 0; i < n; i++) {
    Block* b = out->blocks[i];
    if (room > 0) {
      c[1 + count++] = reinterpret_cast<uintptr_t>(b);
      room--;
      continue;
    }
    if (c != nullptr) c[0] |= static_cast<uintptr_t>(count) << CARRIER_COUNT_SHIFT;
    c = carrier_words(b);
    c[0] = reinterpret_cast<uintptr_t>(list);
    if (tail == nullptr) tail = b;
    list = b;
    count = 0;
    room = room_per_carrier;
  }
  c[0] |= static_cast<uintptr_t>(count) << CARRIER_COUNT_SHIFT;
  uintptr_t* t = carrier_words(tail);
  const uintptr_t tail_count = t[0] & ~CARRIER_NEXT_MASK;
  uintptr_t head = dest->remote_in.load(std::memory_order_relaxed);
  do {
    if (head == REMOTE_IN_CLOSED) {  // it exited since it was found
      for (uint32_t i = 0; i < n; i++) free_block_mt(page_segment(page), page, out->blocks[i]);
      return;
    }
    t[0] = tail_count | head;
  } while (!dest->remote_in.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(list), std::memory_order_release,
                                                  std::memory_order_relaxed));
}

}  // namespace

void remote_free_other(Page* page, Block* block, uintptr_t owner) noexcept {
  Heap* self = heap_get_default();
  if (MI_UNLIKELY(!heap_is_initialized(self))) {
    // A thread that has not allocated (a consumer): a free needs no heap of
    // its own, a run of frees into one page gets one, for the batch.
    if (tls_remote_last_page != page) {
      tls_remote_last_page = page;
      free_block_remote(page, block);
      return;
    }
    self = thread_heap_init();
    if (self == nullptr) {
      free_block_remote(page, block);
      return;
    }
  }
  RemoteOut* out = &self->tld->remote_out;
  if (out->page == page && out->owner == owner) {
    if (out->limit == REMOTE_LIMIT_UNKNOWN) {
      // the run's second free: whether the page's frees are held, and how many
      const size_t bsize = page->block_size;
      const bool batched = page_is_batched(page) && bsize <= REMOTE_BATCH_BLOCK_MAX && !out->closed;
      out->limit = !batched ? 0
                   : (bsize * REMOTE_OUT_BLOCKS <= REMOTE_BATCH_BYTES_MAX)
                       ? static_cast<uint32_t>(REMOTE_OUT_BLOCKS)
                       : static_cast<uint32_t>(REMOTE_BATCH_BYTES_MAX / bsize);
    }
    if (out->limit == 0) {
      free_block_remote(page, block);
      return;
    }
    asan_block_free(page, block);
    out->blocks[out->n++] = block;
    if (out->n >= out->limit) send(out);  // (the block that fills the batch)
    return;
  }
  // Another page than the last remote free's: this block goes at once (a
  // free into a random page of another thread's gains nothing from a batch:
  // larson_bench, where few frees follow one into the same page, was 18%
  // slower when every free waited in a batch), and the run of the last
  // page, if any, is sent. The frees that follow into this page are held,
  // up to the limit the next one sets (0: none, for a page not batched into,
  // a block too large, or a thread that is exiting).
  if (out->n != 0) send(out);
  out->page = page;
  out->owner = owner;
  out->limit = REMOTE_LIMIT_UNKNOWN;
  free_block_remote(page, block);
}

void remote_batch_send_all(Tld* tld) noexcept { send(&tld->remote_out); }

void remote_batch_receive(Tld* tld) noexcept {
  if (!remote_batch_waiting(tld)) return;
  receive_list(tld->remote_in.exchange(0, std::memory_order_acquire));
}

void remote_batch_open(Tld* tld) noexcept {
  tld->remote_in.store(0, std::memory_order_relaxed);
  tld->remote_out.closed = false;
  thread_table_add(thread_id(), tld);
}

void remote_batch_close(Tld* tld) noexcept {
  if (tld->remote_out.closed) return;
  thread_table_remove(thread_id());
  remote_batch_send_all(tld);
  tld->remote_out.closed = true;
  tld->remote_out.limit = 0;
  receive_list(tld->remote_in.exchange(REMOTE_IN_CLOSED, std::memory_order_acquire));
}

void remote_batch_fork_orphan(Tld* tld) noexcept {
  // (single-threaded: the child has only the forking thread; its table
  // entry's id may be reused by the child's new threads)
  for (ThreadEntry& e : thread_table) {
    if (e.tld.load(std::memory_order_relaxed) == tld) {
      e.tld.store(nullptr, std::memory_order_relaxed);
      e.tid.store(THREAD_TABLE_GONE, std::memory_order_relaxed);
    }
  }
  tld->remote_out.closed = true;
  const uintptr_t list = tld->remote_in.exchange(REMOTE_IN_CLOSED, std::memory_order_relaxed);
  for_each_carrier(list, [](Block* c, const uintptr_t* w, size_t count) {
    Page* page = batch_block_page(ptr_segment(c), c);  // (a batch is one page's)
    for (size_t i = 1; i <= count; i++) page_thread_free_push_alone(page, reinterpret_cast<Block*>(w[i]));
    page_thread_free_push_alone(page, c);
  });
}

}  // namespace mi
