// page.cpp: see page.h.
//
// The allocation slow path, as a call tree:
//
//   malloc_generic(heap, size)              the direct page had no free block
//     thread_heap_init()                    first call of a thread
//     heap_deferred_free()                  mi_register_deferred_free callback
//     delayed_list_free_partial()           blocks other threads freed into full pages
//     remote_batch_receive()                other threads' batches of frees (heap/remote_batch.h)
//     remote_batch_send_all()               every 32nd call: this thread's batch held
//     find_page()
//       huge_page_alloc()                   > LARGE_OBJ_SIZE_MAX: a segment of its own
//       find_free_page(pq)                  the bin's first page, after collecting
//         page_queue_find_free(pq)          walk the bin; full pages move to BIN_FULL
//           page_free_collect()             local_free + thread_free -> free
//           page_extend_free()              make up to 4 KiB more blocks available
//           page_to_full()
//           page_fresh()                    a free page of a thread segment,
//             heap_reclaim_abandoned()      ... of an abandoned segment,
//             segment_page_alloc()          ... or of a new segment
//     pop a block
//
// Every step is bounded: a page moves to the full queue at most once per
// scan, free lists are extended by at most 4 KiB, the deferred callback runs
// once per call.
#include "page.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "../arena/arena.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/sanitizer.h"
#include "../common/stats.h"
#include "../common/test_point.h"
#include "../os/os.h"
#include "../segment/abandon.h"
#include "../segment/purger.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "abandoned_purge.h"
#include "cross_cache.h"
#include "free_list.h"
#include "full_held.h"
#include "heap.h"
#include "heap_stats.h"
#include "misuse.h"
#include "node_release.h"
#include "page_queue.h"
#include "remote_batch.h"
#include "size_class.h"

namespace mi {

constinit Page page_empty{};

namespace {

constexpr uint8_t RETIRE_CYCLES = 16;

// A block pointer in the thread-free word ends below its count (types.h):
// every segment lies in the address space the segment map covers.
static_assert(SEGMAP_ADDRESS_BITS <= THREAD_FREE_COUNT_SHIFT, "the thread-free count would overlap block pointers");

Heap* page_heap(const Page* page) { return page->xheap.load(std::memory_order_relaxed); }

Block* tf_block(uintptr_t tf) { return thread_free_block(tf); }
Delayed tf_delayed(uintptr_t tf) { return thread_free_delayed(tf); }
// tf with its state set to d, its list (head and count) kept
uintptr_t tf_with_state(uintptr_t tf, Delayed d) { return (tf & ~DELAYED_MASK) | static_cast<uintptr_t>(d); }

// The counters of frees into `page` (ThreadStats): its owner's, or the
// process's when the page has no heap (abandoned).
int page_account(const Page* page) { return page_segment(page)->memid.account; }

void count_frees(const Page* page, int64_t n, bool remote) {
  Heap* heap = page_heap(page);
  const int a = page_account(page);
  if (heap != nullptr && heap->tld != nullptr) {
    own_counter_add(remote ? heap->tld->stats.remote_frees[a] : heap->tld->stats.local_frees[a], n);
  } else {
    (remote ? stats_global.remote_frees[a] : stats_global.local_frees[a]).fetch_add(n, std::memory_order_relaxed);
  }
}

// Counts the blocks of local_free as local frees when they leave it (to the
// free list, or with the page): only while statistics are published. The
// other threads' frees that page_thread_free_collect put there are taken off
// again (counted as remote frees there). A list that misuse corrupted
// (reported when it is reused) counts as empty.
[[maybe_unused]] size_t local_free_length(const Page* page) {  // (for MI_ASSERT_EXPENSIVE)
  const size_t n = free_list_count(page, page->local_free, page->capacity, nullptr, false);
  return n == LIST_BAD ? 0 : n;
}
// n blocks of local_free (the caller knows how many: walked, or the rest of
// the page's blocks).
void count_local_frees(const Page* page, size_t n) {
  if (n != 0 && stats_counting_local_frees.load(std::memory_order_relaxed))
    count_frees(page, static_cast<int64_t>(n), false);
}
// The same when the free list is empty, without the walk: every block made
// available (capacity) is live (used, which still counts blocks in
// thread_free and the heap's delayed list), in the free list or in
// local_free, so with no free list local_free holds capacity - used.
void count_local_frees_free_empty(const Page* page) {
  if (!stats_counting_local_frees.load(std::memory_order_relaxed)) return;
  MI_ASSERT(page->free == nullptr && page->used <= page->capacity);
  const int64_t n = static_cast<int64_t>(page->capacity) - static_cast<int64_t>(page->used);
  MI_ASSERT_EXPENSIVE(static_cast<int64_t>(local_free_length(page)) == n);
  if (n > 0) count_frees(page, n, false);
}

// n blocks put in (or taken from) the `free` list of a page of the direct
// sizes, counted as allocated ahead of their allocation (heap_stats.h).
void page_stat_add(Page* page, int64_t n) {
  if (!page_counted_by_refill(page) || n == 0) return;
  Heap* heap = page_heap(page);
  if (heap != nullptr && heap->tld != nullptr) own_counter_add(heap->tld->stats.bin_malloc[page->bin], n);
}

// page_local_free_check (misuse.h), with the blocks of a `free` list it drops
// taken back from the allocations they were counted as ahead (page_stat_add):
// dropped blocks are never handed out.
bool local_free_check_counted(Page* page) {
  const int64_t in_free = static_cast<int64_t>(page_free_count(page));
  if (page_local_free_check(page)) return true;
  page_stat_add(page, -in_free);
  return false;
}

// Moves the thread-free list to local_free (atomically taking it).
MI_NOINLINE void page_thread_free_collect(Page* page) {
  uintptr_t tfree = page->xthread_free.load(std::memory_order_relaxed);
  do {
    if (tf_block(tfree) == nullptr) return;
  } while (!page->xthread_free.compare_exchange_weak(tfree, static_cast<uintptr_t>(tf_delayed(tfree)),
                                                     std::memory_order_acq_rel, std::memory_order_relaxed));
  Block* head = tf_block(tfree);
  size_t count = thread_free_count(tfree);  // kept by the freeing threads (types.h)
  if (MI_SECURE != 0 || secure_enabled() || page->local_free != nullptr) {
    // Walked: the secure modes check every link (inside the page's blocks,
    // on a block boundary) and the length against the count; a list spliced
    // in front of local_free needs its tail. (page_free_collect moves
    // local_free out of the way first when `free` is empty, the common case.)
    const Block* tail = nullptr;
    const size_t walked = free_list_count(page, head, page->used, &tail, MI_SECURE != 0 || secure_enabled());
    if (MI_UNLIKELY(walked == LIST_BAD || walked != count)) {
      thread_free_bad(page, head);  // a double free, or a corrupted link
      return;                       // leak the list rather than corrupt the page further
    }
    block_set_next(page, const_cast<Block*>(tail), page->local_free);
  } else if (MI_UNLIKELY(count == 0 || count > page->used || block_next(page, head) == head)) {
    // Not walked: the tests page_free_collect makes of local_free (the count
    // of blocks in use would wrap; a block freed twice in a row loops on
    // itself), which catch the common forms of a double free by another
    // thread. A loop through other blocks goes unseen, as it does in
    // local_free (the secure option walks both).
    thread_free_bad(page, head);
    return;
  }
  page->local_free = head;
  test_point(TestPoint::thread_free_collected);  // (tests/unit/fork_test.cpp forks here)
  count_frees(page, static_cast<int64_t>(count), true);
  if (stats_counting_local_frees.load(std::memory_order_relaxed)) {
    count_frees(page, -static_cast<int64_t>(count), false);  // count_local_frees counts them again
  }
  MI_ASSERT(count <= page->used);
  page->used -= static_cast<uint32_t>(count);
}

// Links the n blocks from `start` into a list in a random order (the secure
// mode): where the next malloc's block lies cannot be told from the last one.
Block* link_blocks_shuffled(const Page* page, uint8_t* start, size_t n, Tld* tld) {
  uint16_t order[MAX_EXTEND_SIZE / WORD_SIZE];  // n <= MAX_EXTEND_SIZE / block size, or MIN_EXTEND
  for (size_t i = 0; i < n; i++) order[i] = static_cast<uint16_t>(i);
  uint64_t r = 0;
  unsigned left = 0;
  for (size_t i = n - 1; i > 0; i--) {  // Fisher-Yates, 16 random bits per swap
    if (left == 0) {
      r = tld_random(tld);
      left = 4;
    }
    // j in [0, i], by a multiply instead of a division: each j is drawn with
    // a chance within 1% of 1/(i+1) (i < 512); unpredictable is what counts
    const size_t j = static_cast<size_t>(((r & 0xffff) * (i + 1)) >> 16);
    r >>= 16;
    left--;
    const uint16_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const size_t bsize = page->block_size;
  Block* first = reinterpret_cast<Block*>(start + order[0] * bsize);
  Block* b = first;
  for (size_t i = 1; i < n; i++) {
    Block* next = reinterpret_cast<Block*>(start + order[i] * bsize);
    block_set_next(page, b, next);
    b = next;
  }
  block_set_next(page, b, nullptr);
  return first;
}

// Blocks an extension makes available: 4 KiB of them, at least MIN_EXTEND;
// blocks of 4 KiB or more one at a time. An extension writes a link into
// each block it makes available, which faults its first OS page in, and the
// fast path hands out those fresh blocks before the page's freed ones (they
// wait on local_free until `free` is empty): with four at a time, a page
// whose blocks are allocated and freed one by one (a growing buffer, a
// request's scratch block) touched four blocks for one live. One at a time,
// an allocation that finds `free` empty takes the slow path, which collects
// the freed blocks before it extends: small against the faults of a block
// this size (realloc_bench --max-target 128K:
// peak RSS 11.8 -> 9.6 MiB, page faults 2400 -> 1830; dbsim's median of 5
// alternated runs 113 -> 112 MiB). The cost: a block allocated and freed at
// once takes a slow path each time (pairs immediate-4096: 107 -> 122
// instructions a pair; tcmalloc 70, jemalloc 102). The secure build
// keeps MIN_EXTEND: it shuffles the blocks of an extension.
size_t extend_step(size_t bsize) {
  if (bsize >= MAX_EXTEND_SIZE) return secure_enabled() ? MIN_EXTEND : 1;
  const size_t n = MAX_EXTEND_SIZE / bsize;
  return n < MIN_EXTEND ? MIN_EXTEND : n;
}

void page_extend_free(Page* page) {
  if (page->free != nullptr || page->capacity >= page->reserved) return;
  const size_t bsize = page->block_size;
  size_t extend = page->reserved - page->capacity;
  const size_t max_extend = extend_step(bsize);
  if (extend > max_extend) extend = max_extend;
  uint8_t* start = page->page_start + static_cast<size_t>(page->capacity) * bsize;
  // (ASan builds: the new blocks' link words, which either order writes)
  for (size_t i = 0; i < extend; i++) asan_block_link(page, start + i * bsize);
  Heap* heap = page_heap(page);
  Tld* tld = (heap != nullptr) ? heap->tld : nullptr;
  if (extend > 1 && tld != nullptr && secure_enabled()) {
    page->free = link_blocks_shuffled(page, start, extend, tld);
  } else {
    Block* first = reinterpret_cast<Block*>(start);
    Block* b = first;
    for (size_t i = 1; i < extend; i++) {
      Block* next = reinterpret_cast<Block*>(start + i * bsize);
      block_set_next(page, b, next);
      b = next;
    }
    block_set_next(page, b, nullptr);
    page->free = first;
  }
  page->free_is_zero = page->is_zero_init;
  page_capacity_set(page, static_cast<uint16_t>(page->capacity + extend));
  page_blocks_update(page);
  page_stat_add(page, static_cast<int64_t>(extend));
  if (tld != nullptr) tld->stats.pages_extended++;
}

// The page's size class and the line-1 copy of its block size (types.h:
// Page::small_block_size), from its block size.
void page_set_bin(Page* page, size_t block_size) {
  page->bin = static_cast<uint8_t>(bin_of_size(block_size));
  page->small_block_size = static_cast<uint32_t>(block_size <= UINT32_MAX ? block_size : 0);
}

void page_init(Heap* heap, Page* page) {
  page_set_heap(page, heap);
  page_set_bin(page, page->block_size);
  page->heap_tag = heap->tag;
#if MI_SECURE
  page->keys[0] = tld_random(heap->tld);
  page->keys[1] = tld_random(heap->tld) | 1;  // an odd rotation: never the identity
#endif
  page_blocks_update(page);
  asan_page_setup(page);
  page_extend_free(page);
  MI_ASSERT_EXPENSIVE(page_is_valid(page));
}

void page_to_full(Page* page, PageQueue* pq, bool update_direct = true) {
  if (page_in_full(page)) return;
  Heap* heap = page_heap(page);
  page_use_delayed_free(page, Delayed::use_delayed_free, false);
  page_queue_move_to_back(heap, &heap->pages[BIN_FULL], pq, page, update_direct);
  // a thread may have freed into it just before use_delayed_free was set
  page_free_collect(page, false);
}

void page_unfull(Page* page) {
  page_use_delayed_free(page, Delayed::no_delayed_free, false);
  if (!page_in_full(page)) return;
  Heap* heap = page_heap(page);
  PageQueue* pqfull = &heap->pages[BIN_FULL];
  // its queue when not full (page_bin), without clearing and setting the flag
  // to ask heap_page_queue_of (pairs random-4096: 378 -> 369 instructions)
  PageQueue* pq = &heap->pages[page->bin];
  // To the front when the queue's first page has nothing left to give (no
  // free block, none freed, no untouched room): the next allocation takes the
  // block just freed from the first page (malloc_queue_first) instead of a slow
  // search that sends the used-up first page to the full queue. A cache's
  // evictions free random blocks, a page at a time leaves the full queue with
  // one free block (pairs random-4096: 545 -> 385 instructions per pair;
  // RocksDB readrandom's allocator instructions -25%). Else to the back, as
  // mimalloc does: a page freed into ring-wise gathers its blocks there
  // (ring-4096: 186 instructions per pair when always to the front, 162 so).
  // Only above the direct table's sizes: a small page at the front would
  // rewrite the bin's direct entries at each move.
  const Page* first = pq->first;
  if (pq->block_size > SMALL_SIZE_MAX && (first == nullptr || (first->free == nullptr && first->local_free == nullptr &&
                                                               first->capacity == first->reserved))) {
    page_queue_move_to_front(heap, pq, pqfull, page);
  } else {
    page_queue_move_to_back(heap, pq, pqfull, page);
  }
}

void page_free_block_local(Page* page, Block* block, bool check_full) {
  page_local_free_push(page, block);
  MI_ASSERT(page->used > 0);
  if (MI_UNLIKELY(--page->used == 0)) {
    page_retire(page);
  } else if (MI_UNLIKELY(check_full && page_in_full(page))) {
    page_unfull(page);
  }
}

// Pushes a block of `page` onto the heap's delayed-free list (any thread;
// the owner takes the whole list at once: delayed_list_free_partial).
void delayed_push(Heap* heap, const Page* page, Block* block) {
  Block* dfree = heap->thread_delayed_free.load(std::memory_order_relaxed);
  do {
    block_set_next(page, block, dfree);
  } while (!heap->thread_delayed_free.compare_exchange_weak(dfree, block, std::memory_order_release,
                                                            std::memory_order_relaxed));
}

// Frees a block that another thread pushed onto the heap's delayed list.
bool free_delayed_block(Block* block) {
  Segment* segment = ptr_segment(block);
  Page* page = segment_page_of(segment, block);
  // Re-arm delayed freeing before collecting: otherwise blocks could sit in
  // thread_free of a full page with nothing on the delayed list to notice them.
  if (!page_try_use_delayed_free(page, Delayed::use_delayed_free, false)) return false;
  page_free_collect(page, false);
  // another thread's free, handed over through the heap's delayed list
  // (counted before the page may go with its last block)
  count_frees(page, 1, true);
  if (stats_counting_local_frees.load(std::memory_order_relaxed)) count_frees(page, -1, false);
  page_free_block_local(page, block, true);
  return true;
}

Page* page_fresh(Heap* heap, PageQueue* pq, bool* retry) {
  Tld* tld = heap->tld;
  Page* page = segment_page_alloc(heap, pq->block_size, 0, false, &tld->segments);
  if (page == nullptr && !heap->no_reclaim && abandoned_count() > 0) {
    if (heap_reclaim_abandoned(heap, pq->block_size) && pq->first != nullptr) {
      *retry = true;  // pages of this size came back: look at the queue again
      return nullptr;
    }
    page = segment_page_alloc(heap, pq->block_size, 0, false, &tld->segments);
  }
  if (page == nullptr) {
    heap_release_off_node(heap);  // the process grows: first what other nodes hold for no thread
    page = segment_page_alloc(heap, pq->block_size, 0, true, &tld->segments);
  }
  if (page == nullptr) return nullptr;
  test_point(TestPoint::page_fresh);  // (tests/unit/fork_test.cpp forks here)
  page_init(heap, page);
  page_queue_push(heap, pq, page);
  return page;
}

// A page of one of the next BORROW_BINS sizes up, no more than an eighth
// larger, whose free blocks can serve a size that would otherwise touch
// untouched memory (extend a page, or take a fresh one); nullptr if none of
// those queues' first pages has a free block. Why: where a program replaces
// blocks by blocks of other sizes (rows updated in place: numa-vm
// shape-db), each size class keeps the freed blocks of its own highest
// count, resident and idle, while the class beside it grows into new
// memory; a block of the next class up serves instead, as glibc's best fit
// would give a slightly larger free chunk. Only the small sizes (their
// classes lie close together), only the queues' first pages (one look each,
// after their own frees are collected): a borrowed block costs this slow
// path, not a walk. Measured (peak RSS, medians of 9 alternated runs):
// dbsim 108.9 -> 106.4 MiB, larson 22.9 -> 22.2; shape-db on the host
// 72.8 -> 72.2 (4-node guest: 71.8 both); larson's instructions +0.05%.
// Lending fresh blocks too (a page still being extended) made shape-db
// worse (73.5 MiB): they are the lender's next blocks, and the borrower's
// rows then sat rounded up in them.
constexpr size_t BORROW_BINS = 2;
Page* borrow_page(Heap* heap, const PageQueue* pq) {
  const size_t bsize = pq->block_size;
  if (bsize > SMALL_SIZE_MAX) return nullptr;
  const size_t bin = static_cast<size_t>(pq - heap->pages);
  for (size_t k = 1; k <= BORROW_BINS && bin + k <= BIN_LARGE_MAX; k++) {
    if (bin_block_sizes[bin + k] > bsize + bsize / 8) break;
    Page* page = heap->pages[bin + k].first;
    // (a page still being extended: its free blocks may be fresh ones,
    // which the class itself would take next; lend only freed blocks)
    if (page == nullptr || page->capacity < page->reserved) continue;
    page_free_collect(page, false);
    if (page->free != nullptr) return page;
  }
  return nullptr;
}

Page* page_queue_find_free(Heap* heap, PageQueue* pq, bool first_try) {
  size_t searched = 0;
  Page* page = pq->first;
  // Freed blocks of the queue's pages come before untouched memory: a page
  // that can only be extended (the queue's front, as pages freed into go to
  // its back) is passed over once the pages behind it hold an extension's
  // worth of free blocks (the first of them serves). Extending it first
  // touched up to a whole page more per size class and thread while freed
  // blocks waited behind it: with rows replaced by rows of other sizes
  // (numa-vm shape-db, 4 threads) most of the peak RSS above glibc's. Not
  // for fewer: a program that frees and allocates in turn (a ring of
  // blocks) would be served one block per slow call for good (pairs
  // ring-4096: 181 instructions per pair against 158), where an extension's
  // blocks give it time to free as many into the older page (161).
  // Only untouched memory waits so: a page whose memory was used before (not
  // zero when the page was set up) is extended at once, as it costs no new
  // memory, and a run of fresh links written in order serves faster than
  // freed blocks behind it that another thread's frees left in its core's
  // cache, each a miss to follow (xfree_bench, 64 B blocks freed by another
  // thread: median CPU 0.44 -> 0.30 s in 11 alternated runs, no longer
  // bimodal; numa-vm shape-db's peak on the host unchanged, 72.3-72.7 MiB).
  // The direct page (page_queue.h) is set once, at the end, not for every
  // page that goes to the full queue and again for the page moved to the
  // front (rows replaced by rows of other sizes send a page to the full
  // queue on one malloc in eight: numa-vm shape-db; when the direct table
  // had an entry per byte size, each setting wrote up to 64 of them and
  // page_to_full cost 234 instructions a call, 4.6% of the shape's).
  bool direct_stale = false;
  Page* extendable = nullptr;
  Page* first_free = nullptr;
  size_t free_behind = 0;
  while (page != nullptr) {
    Page* next = page->next;
    searched++;
    page_free_collect(page, false);
    if (page->free != nullptr) {
      if (extendable == nullptr) break;
      if (first_free == nullptr) first_free = page;
      free_behind += static_cast<size_t>(page->capacity - page->used);
      if (free_behind >= extend_step(page->block_size)) {
        page = first_free;
        break;
      }
    } else if (page->capacity < page->reserved) {
      if (!page->is_zero_init) break;  // extended below
      if (extendable == nullptr) extendable = page;
    } else {
      page_to_full(page, pq, false);  // the direct table: set once below
      direct_stale = true;
    }
    page = next;
  }
  if (page == nullptr && first_try) {
    // Only untouched memory is left for this size: a free block of the next
    // sizes up first, when one is at hand (borrow_page).
    Page* lender = borrow_page(heap, pq);
    if (lender != nullptr) {
      if (direct_stale) heap_queue_first_update(heap, pq);
      heap->tld->stats.page_searches++;
      heap->tld->stats.page_search_steps += static_cast<int64_t>(searched);
      lender->retire_expire = 0;
      return lender;
    }
  }
  if (page == nullptr && extendable != nullptr) page = extendable;
  if (page != nullptr && page->free == nullptr) page_extend_free(page);
  heap->tld->stats.page_searches++;
  heap->tld->stats.page_search_steps += static_cast<int64_t>(searched);
  if (page == nullptr) {
    if (direct_stale) heap_queue_first_update(heap, pq);
    heap_collect_retired(heap, false);
    bool retry = false;
    page = page_fresh(heap, pq, &retry);
    if (page == nullptr && retry && first_try) return page_queue_find_free(heap, pq, false);
  } else if (page != pq->first) {
    // move it to the front so the direct table points at it
    page_queue_move_to_front(heap, pq, pq, page);
  } else if (direct_stale) {
    heap_queue_first_update(heap, pq);
  }
  MI_ASSERT_EXPENSIVE(heap_is_valid(heap));
  if (page != nullptr) page->retire_expire = 0;
  return page;
}

Page* find_free_page(Heap* heap, PageQueue* pq) {
  Page* page = pq->first;
  if (page != nullptr) {
    page_free_collect(page, false);  // cheap: often local_free has blocks
    if (page->free != nullptr) {
      page->retire_expire = 0;
      return page;
    }
  }
  return page_queue_find_free(heap, pq, true);
}

Page* huge_page_alloc(Heap* heap, size_t size, size_t huge_alignment) {
  size_t block_size = align_up(size, WORD_SIZE);
  if (block_size <= LARGE_OBJ_SIZE_MAX) block_size = LARGE_OBJ_SIZE_MAX + WORD_SIZE;  // an aligned request
  heap_release_off_node(heap);  // a huge block is a new segment: the process grows
  Page* page = segment_page_alloc(heap, block_size, huge_alignment, true, &heap->tld->segments);
  if (page == nullptr) return nullptr;
  page_init(heap, page);
  page_queue_push(heap, &heap->pages[BIN_HUGE], page);
  // an over-aligned block is counted once page_huge_fit has fitted it: its
  // page holds the alignment's room until then (the peak would count it)
  if (huge_alignment == 0) page_huge_stat_add(page);
  return page;
}

// A page of its own for a block that realloc grows past the small sizes: a
// large page (a run of 64 KiB slices) holding one block of the size's bin,
// which the next steps grow in place, into the page's slack and then the free
// slices after it (page_try_grow_in_place), with no copy and no other bin's
// page touched. In medium pages a growing buffer took a block in each bin it
// passed (12 bins from 16 to 128 KiB), and each bin's page kept the blocks
// of the most buffers ever at that step at once, resident: realloc_bench's
// two medium segments held 2.4-3.3 MiB for 0.4-0.5 MiB of live blocks.
// An untouched slack costs nothing resident; a slice used before is resident
// whole until its purge, as a medium page's free blocks are.
Page* grown_page_alloc(Heap* heap, size_t size) {
  PageQueue* pq = &heap->pages[bin_of_size(size)];
  SegmentsTld* tld = &heap->tld->segments;
  Page* page = segment_large_page_alloc(heap, pq->block_size, false, tld);
  if (page == nullptr) {
    heap_release_off_node(heap);  // the process grows: first what other nodes hold for no thread
    page = segment_large_page_alloc(heap, pq->block_size, true, tld);
    if (page == nullptr) return nullptr;
  }
  page_init(heap, page);
  page_queue_push(heap, pq, page);
  return page;
}

Page* find_page(Heap* heap, size_t size, size_t huge_alignment) {
  if (MI_UNLIKELY(size > LARGE_OBJ_SIZE_MAX || huge_alignment > 0)) {
    // (rounding an impossible size up would wrap: malloc_generic reports it)
    if (MI_UNLIKELY(!alloc_request_possible(size, huge_alignment))) return nullptr;
    return huge_page_alloc(heap, size, huge_alignment);
  }
  if (MI_UNLIKELY(size > SMALL_OBJ_SIZE_MAX && size <= MEDIUM_OBJ_SIZE_MAX && heap->tld->segments.realloc_growing)) {
    Page* page = grown_page_alloc(heap, size);
    if (page != nullptr) return page;  // (else a medium page, as any malloc)
  }
  return find_free_page(heap, &heap->pages[bin_of_size(size)]);
}

}  // namespace

size_t page_free_count(const Page* page) noexcept {
  // |free| = capacity - used - |local_free| (used counts the blocks in the
  // thread-free list): walk whichever of free and local_free ends first.
  // Only links into the page's blocks are followed: a list or count that
  // misuse corrupted (reported when the list is reused) ends the walk.
  const PageBlocks blocks = page_blocks(page);
  const Block* f = page->free;
  const Block* l = page->local_free;
  const size_t cap = page->capacity;
  for (size_t n = 0; n <= cap; n++) {
    if (f == nullptr) return n;
    if (l == nullptr) {
      if (page->used + n <= cap) return cap - page->used - n;
      break;  // a count wrapped by a double free: walk `free` itself
    }
    if (!blocks.contains(f) || !blocks.contains(l)) break;
    f = block_next(page, f);
    l = block_next(page, l);
  }
  size_t n = 0;
  for (f = page->free; f != nullptr && n < cap && blocks.contains(f); f = block_next(page, f)) n++;
  return n;
}

void page_stat_adopt(Page* page) noexcept { page_stat_add(page, static_cast<int64_t>(page_free_count(page))); }

void page_stat_drop(Page* page) noexcept { page_stat_add(page, -static_cast<int64_t>(page_free_count(page))); }

size_t block_list_length(const Block* b, size_t limit) noexcept {
  size_t n = 0;
  while (b != nullptr && n <= limit) {
    n++;
    b = block_next_any(b);
  }
  return n;
}

bool page_try_use_delayed_free(Page* page, Delayed delay, bool override_never) noexcept {
  uintptr_t tfree = page->xthread_free.load(std::memory_order_acquire);
  for (;;) {
    Delayed old = tf_delayed(tfree);
    if (old == Delayed::delayed_freeing) return false;  // another thread is mid-handshake
    if (old == delay) return true;
    if (old == Delayed::never_delayed_free && !override_never) return true;
    uintptr_t tfreex = tf_with_state(tfree, delay);
    if (page->xthread_free.compare_exchange_weak(tfree, tfreex, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return true;
    }
  }
}

void page_use_delayed_free(Page* page, Delayed delay, bool override_never) noexcept {
  int spins = 0;
  while (!page_try_use_delayed_free(page, delay, override_never)) {
    // the other thread holds the state for a few instructions only
    if (++spins >= 4) sched_yield();
  }
}

namespace {

// page_free_collect's part for local_free: to `free` when that is empty (or
// spliced in front of it with `force`). False: the lists were found bad,
// reported and dropped.
bool local_free_collect(Page* page, bool force) {
  if (page->local_free != nullptr) {
    // Before local_free's blocks are handed out again: two tests that cost a
    // few instructions per collect and catch a double free in the common
    // forms (the count of blocks in use wrapped below zero; a block freed
    // twice in a row loops on itself); the whole lists with the secure
    // option. (The secure build checks every free and every link it pops
    // instead: walking the lists as well cost it 20 instructions per
    // free+malloc, tools/fastpath-count.)
    if (MI_UNLIKELY((MI_SECURE == 0 && option_is_enabled(mi_option_secure)) || page->used > page->capacity ||
                    block_next(page, page->local_free) == page->local_free)) {
      if (!local_free_check_counted(page)) return false;  // reported; the lists were dropped
    }
    if (page->free == nullptr) {
      count_local_frees_free_empty(page);
      page->free = page->local_free;
      page->local_free = nullptr;
      page->free_is_zero = 0;
      // every block not in use is in `free` now
      page_stat_add(page, static_cast<int64_t>(page->capacity) - static_cast<int64_t>(page->used));
    } else if (force) {
      const Block* tail = nullptr;
      const size_t n = free_list_count(page, page->local_free, page->capacity, &tail);
      if (n == LIST_BAD) {
        local_free_check_counted(page);  // reports what is wrong, drops the lists
        return false;
      }
      count_local_frees(page, n);
      page_stat_add(page, static_cast<int64_t>(n));
      block_set_next(page, const_cast<Block*>(tail), page->free);
      page->free = page->local_free;
      page->local_free = nullptr;
      page->free_is_zero = 0;
    }
  }
  return true;
}

}  // namespace

void page_free_collect(Page* page, bool force) noexcept {
  if (force || tf_block(page->xthread_free.load(std::memory_order_relaxed)) != nullptr) {
    // local_free to `free` first when that is empty (the common case): then
    // the thread-free list becomes local_free as it is, with no walk for its
    // tail (page_thread_free_collect)
    if (page->free == nullptr && page->local_free != nullptr && !local_free_collect(page, false)) return;
    page_thread_free_collect(page);
  }
  local_free_collect(page, force);
}

bool page_try_grow_in_place(Page* page, void* p, size_t newsize) noexcept {
  if (p != page->page_start || page_has_aligned(page) || page->reserved != 1) return false;
  Heap* heap = page_heap(page);
  if (heap == nullptr || heap->tld == nullptr) return false;
  if (page_segment(page)->page_kind == PageKind::huge) {
    // its own segment, in the full queue of the huge bin whatever its size
    const size_t old_block_size = page->block_size;
    if (!segment_huge_page_try_grow(page, newsize, &heap->tld->segments)) return false;
    page_blocks_update(page);
    stat_increase(stats_global.huge_bytes, static_cast<int64_t>(page->block_size - old_block_size));
    return true;
  }
  if (newsize > LARGE_OBJ_SIZE_MAX || page_segment(page)->page_kind != PageKind::large) return false;
  const size_t new_block_size = bin_block_sizes[bin_of_size(newsize)];
  PageQueue* pq = heap_page_queue_of(heap, page);
  if (!segment_large_page_try_grow(page, new_block_size, &heap->tld->segments)) return false;
  test_point(TestPoint::large_page_grown);  // (tests/unit/fork_test.cpp forks here)
  page_blocks_update(page);
  // Its block size changed: it belongs to another bin now. It is full (its
  // one block is in use), so it goes to the full queue.
  if (!page_queue_is_full(pq)) {
    page->block_size = pq->block_size;  // as the queue knows it, for the move
    page_to_full(page, pq);
    page->block_size = new_block_size;
  }
  page_set_bin(page, new_block_size);  // (after the move: its queue is the old bin's)
  return true;
}

void page_huge_fit(Page* page, const void* block, size_t size) noexcept {
  Heap* heap = page_heap(page);
  if (heap != nullptr && heap->tld != nullptr) {
    const size_t old_block_size = page->block_size;
    const size_t start = static_cast<size_t>(static_cast<const uint8_t*>(block) - page->page_start);
    size_t end = start + (size > 0 ? size : 1);
    // a huge page's block stays over the large-block limit: its bin (BIN_HUGE) says so
    if (end < LARGE_OBJ_SIZE_MAX + WORD_SIZE) end = LARGE_OBJ_SIZE_MAX + WORD_SIZE;
    segment_huge_page_fit(page, start, end, &heap->tld->segments);
    if (page->block_size != old_block_size) page_blocks_update(page);
  }
  page_huge_stat_add(page);  // (huge_page_alloc left it to here)
}

void page_fork_mend(Page* page) noexcept {
  // (a large page grown in place gets its new bin last: page_try_grow_in_place)
  page_set_bin(page, page->block_size);
  const size_t capacity = page_capacity(page);
  constexpr size_t BLOCKS_MAX = SMALL_PAGE_SIZE / WORD_SIZE;  // the most a page holds: 8 B blocks in a small page
  if (page->free_parked || capacity > BLOCKS_MAX) return;     // (parked: its free blocks are bits, no list)
  // page_blocks' constants, from the page's own fields (a secure build's
  // may lag an extension the thread stopped in)
  const PageBlocks blocks{reinterpret_cast<uintptr_t>(page->page_start),
                          static_cast<uint64_t>(capacity) * page->block_size,
                          (page->reserved == 1) ? 1 : block_size_divisor(page->block_size)};
  uint64_t listed_bits[BLOCKS_MAX / 64] = {};
  size_t listed = 0;
  auto mend = [&](Block** head) {
    Block* prev = nullptr;
    for (Block* b = *head; b != nullptr; b = block_next(page, b)) {
      const size_t i = blocks.has_block(b) ? static_cast<size_t>(blocks.offset(b) / page->block_size) : capacity;
      if (i >= capacity || ((listed_bits[i / 64] >> (i % 64)) & 1) != 0) {
        if (prev == nullptr) *head = nullptr;  // cut: the rest is another list's, or no block's
        else block_set_next(page, prev, nullptr);
        return;
      }
      listed_bits[i / 64] |= uint64_t{1} << (i % 64);
      listed++;
      prev = b;
    }
  };
  mend(&page->free);
  mend(&page->local_free);
  page->used = static_cast<uint32_t>(capacity - listed);  // (blocks on the thread-free list count as used)
  page->free_is_zero = 0;                                 // (a swap stopped half-way left blocks freed dirty in `free`)
}

size_t page_huge_counted_bytes(const Page* page) noexcept { return page->block_size - page_segment(page)->hole_size; }

void page_huge_stat_add(const Page* page) noexcept {
  stat_increase(stats_global.huge_bytes, static_cast<int64_t>(page_huge_counted_bytes(page)));
  stat_increase(stats_global.huge_blocks, 1);
}

void page_huge_stat_drop(const Page* page) noexcept {
  stat_decrease(stats_global.huge_bytes, static_cast<int64_t>(page_huge_counted_bytes(page)));
  stat_decrease(stats_global.huge_blocks, 1);
}

Block* page_ptr_unalign(const Page* page, const void* p) noexcept {
  size_t diff = static_cast<size_t>(static_cast<const uint8_t*>(p) - page->page_start);
  size_t adjust = diff % page->block_size;
  return reinterpret_cast<Block*>(const_cast<uint8_t*>(static_cast<const uint8_t*>(p)) - adjust);
}

void free_block_local_slow(Page* page, Block* block) noexcept {
  if (page_has_aligned(page)) block = page_ptr_unalign(page, block);
  // A double free would make a loop of the free lists. The block freed last
  // is one compare away; invariant builds look through the whole list.
  if (MI_UNLIKELY(block == page->local_free) ||
      (MI_INVARIANTS && free_list_contains(page, page->local_free, block, page->capacity))) {
    misuse_report(Misuse::double_free, "free", block, page);
    return;
  }
  page_free_block_local(page, block, true);
}

void page_receive_blocks(Page* page, Block* first, Block* last, size_t n) noexcept {
  MI_ASSERT(page_owner(page) == thread_id() && page->used >= n);
  // other threads' frees (not counted again as local frees when local_free is swapped)
  count_frees(page, static_cast<int64_t>(n), true);
  if (stats_counting_local_frees.load(std::memory_order_relaxed)) count_frees(page, -static_cast<int64_t>(n), false);
  block_set_next(page, last, page->local_free);
  page->local_free = first;
  page->used -= static_cast<uint32_t>(n);
  if (page->used == 0) {
    page_retire(page);
  } else if (page_in_full(page)) {
    page_unfull(page);
  }
}

void free_block_mt(Segment* segment, Page* page, Block* block) noexcept {
  if (page_has_aligned(page)) block = page_ptr_unalign(page, block);
  if (segment->page_kind == PageKind::huge) segment_huge_block_reset(segment, page, block);

  // A segment of an exited thread: take it over if we can, then free locally.
  if (segment->thread_id.load(std::memory_order_relaxed) == 0 &&
      option_is_enabled(mi_option_abandoned_reclaim_on_free)) {
    Heap* heap = heap_get_default();
    if (heap_is_initialized(heap) && !heap->no_reclaim && segment_is_suitable(segment, heap) &&
        abandoned_remove(segment)) {
      heap_reclaim_segment(heap, segment);
      if (page->segment_in_use && page_heap(page) != nullptr) {
        page_free_block_local(page, block, true);
        return;
      }
    }
  }

  free_block_remote(page, block);
}

void free_block_remote(Page* page, Block* block) noexcept {
  asan_block_free(page, block);  // before another thread can take it
  uintptr_t tfree = page->xthread_free.load(std::memory_order_relaxed);
  uintptr_t tfreex;
  bool use_delayed;
  do {
    use_delayed = tf_delayed(tfree) == Delayed::use_delayed_free;
    if (MI_UNLIKELY(use_delayed)) {
      tfreex = tf_with_state(tfree, Delayed::delayed_freeing);
    } else {
      block_set_next(page, block, tf_block(tfree));
      tfreex = thread_free_pushed(tfree, block);
    }
  } while (
      !page->xthread_free.compare_exchange_weak(tfree, tfreex, std::memory_order_release, std::memory_order_relaxed));

  if (MI_UNLIKELY(use_delayed)) {
    test_point(TestPoint::delayed_freeing);  // tests/unit/fork_test.cpp forks here
    // The page is full in its owner's heap: tell the owner through its
    // delayed-free list, so it moves the page back to its bin.
    Heap* heap = page->xheap.load(std::memory_order_acquire);
    if (heap != nullptr) {
      delayed_push(heap, page, block);
    }
    // and leave delayed_freeing, so the owner may change the state again
    tfree = page->xthread_free.load(std::memory_order_relaxed);
    do {
      tfreex = tf_with_state(tfree, Delayed::no_delayed_free);
      if (heap == nullptr) {  // no owner after all: keep the block on the page
        block_set_next(page, block, tf_block(tfree));
        tfreex = thread_free_pushed(tfreex, block);
      }
    } while (
        !page->xthread_free.compare_exchange_weak(tfree, tfreex, std::memory_order_release, std::memory_order_relaxed));
  }
}

namespace {

// An empty small/medium page stays in its queue for a while:
// heap_collect_retired frees it if it is still empty and first in its bin
// after RETIRE_CYCLES (a quarter for medium pages) of its calls.
void page_mark_retired(Heap* heap, PageQueue* pq, Page* page) {
  page->retire_expire = (page->block_size <= SMALL_OBJ_SIZE_MAX) ? RETIRE_CYCLES : RETIRE_CYCLES / 4;
  size_t index = static_cast<size_t>(pq - heap->pages);
  if (index < heap->page_retired_min) heap->page_retired_min = index;
  if (index > heap->page_retired_max) heap->page_retired_max = index;
}

}  // namespace

void page_retire(Page* page) noexcept {
  Heap* heap = page_heap(page);
  page_set_flag(page, PAGE_HAS_ALIGNED, false);
  PageQueue* pq = heap_page_queue_of(heap, page);
  // Keep the only page of a small/medium bin for a while: a program that
  // allocates and frees one block in a loop should not get and drop a page
  // every time.
  if (MI_LIKELY(!page_queue_is_full(pq) && !page_queue_is_huge(pq) && page->block_size <= MEDIUM_OBJ_SIZE_MAX &&
                pq->last == page && pq->first == page)) {
    heap->tld->stats.pages_retired_kept++;
    page_mark_retired(heap, pq, page);
    return;
  }
  page_free(page, pq);
}

void page_free(Page* page, PageQueue* pq) noexcept {
  Heap* heap = page_heap(page);
  MI_ASSERT(heap != nullptr && pq == heap_page_queue_of(heap, page));
  MI_ASSERT(page->used == 0);  // (blocks in thread_free count as used: collected before)
  if (page->segment_in_use && page_segment(page)->page_kind == PageKind::huge) {
    page_huge_stat_drop(page);
  }
  // Every block made available is in use (used, which counts the thread-free
  // list too), in `free` or in local_free: the local frees are counted from
  // the size of `free` (page_free_count walks the shorter list, and is needed
  // here anyway) instead of walking local_free, which an emptied page holds
  // whole: that walk was 0.9% of churn_bench's instructions while publishing
  // (callgrind), half of what publishing cost it.
  // (Counts that do not add up, a double free's, count none.)
  const size_t in_free = page_free_count(page);
  if (page->used + in_free <= page->capacity) count_local_frees(page, page->capacity - page->used - in_free);
  page_stat_add(page, -static_cast<int64_t>(in_free));
  page_queue_remove(heap, pq, page);
  segment_page_free(page, &heap->tld->segments);
}

void page_abandon(Page* page, PageQueue* pq) noexcept {
  Heap* heap = page_heap(page);
  MI_ASSERT(heap != nullptr && pq == heap_page_queue_of(heap, page) && page->used > 0);
  page_use_delayed_free(page, Delayed::never_delayed_free, false);
  page_set_owner(page, 0);  // from now on, this thread's frees into it are remote frees too
  page_stat_add(page, -static_cast<int64_t>(page_free_count(page)));
  page_set_heap(page, nullptr);
  page_queue_remove(heap, pq, page);
  segment_page_abandon(page, &heap->tld->segments);
}

void page_reclaim(Heap* heap, Page* page) noexcept {
  // pre: the page was abandoned (no owner thread), its segment is ours now
  MI_ASSERT(page_owner(page) == 0);
  MI_ASSERT(page_segment(page)->thread_id.load(std::memory_order_relaxed) == thread_id());
  page_set_heap(page, heap);
  page_set_owner(page, thread_id());
  page_use_delayed_free(page, Delayed::no_delayed_free, true);
  page_set_flag(page, PAGE_IN_FULL, false);
  page->retire_expire = 0;
  PageQueue* pq = heap_page_queue_of(heap, page);
  page_queue_push(heap, pq, page);
  if (page_queue_is_huge(pq)) page_to_full(page, pq);  // its one block is live
  // An empty page (heap/reclaim.cpp keeps small and medium ones) is retired
  // as one the thread emptied itself: freed if it stays unused.
  else if (page->used == 0) page_mark_retired(heap, pq, page);
  MI_ASSERT_EXPENSIVE(page_is_valid(page));
}

void page_thread_free_push_alone(Page* page, Block* block) noexcept {
  const uintptr_t tf = page->xthread_free.load(std::memory_order_relaxed);
  block_set_next(page, block, tf_block(tf));
  page->xthread_free.store(thread_free_pushed(tf, block), std::memory_order_relaxed);
}

void delayed_list_to_pages(Heap* heap) noexcept {
  Block* block = heap->thread_delayed_free.exchange(nullptr, std::memory_order_relaxed);
  while (block != nullptr) {
    Block* next = block_next_any(block);  // each block's link is encoded with its own page's keys
    Segment* segment = segmap_segment_of(block);
    page_thread_free_push_alone(segment_page_of_any(segment, block), block);
    block = next;
  }
}

bool delayed_list_free_partial(Heap* heap) noexcept {
  Block* block = heap->thread_delayed_free.load(std::memory_order_relaxed);
  while (block != nullptr && !heap->thread_delayed_free.compare_exchange_weak(block, nullptr, std::memory_order_acq_rel,
                                                                              std::memory_order_relaxed)) {
  }
  bool all_freed = true;
  while (block != nullptr) {
    Block* next = block_next_any(block);  // each block's link is encoded with its own page's keys
    if (!free_delayed_block(block)) {
      all_freed = false;
      delayed_push(heap, block_page(block), block);
    }
    block = next;
  }
  return all_freed;
}

void delayed_list_free_all(Heap* heap) noexcept {
  while (!delayed_list_free_partial(heap)) sched_yield();
}

namespace {
thread_local bool failures_quiet = false;  // alloc_failures_quiet
}  // namespace

void alloc_failures_quiet(bool on) noexcept { failures_quiet = on; }

void* alloc_impossible(size_t count, size_t size, size_t alignment) noexcept {
  if (count != 1) {
    error_quiet(EOVERFLOW, "allocation request of %zu * %zu bytes overflows; returning NULL", count, size);
  } else if (alignment > 0) {
    error_quiet(EOVERFLOW,
                "allocation request of %zu bytes aligned to %zu can never be met (over %zu bytes); returning NULL",
                size, alignment, ALLOC_SIZE_MAX);
  } else {
    error_quiet(EOVERFLOW, "allocation request of %zu bytes can never be met (over %zu bytes); returning NULL", size,
                ALLOC_SIZE_MAX);
  }
  errno = ENOMEM;
  return nullptr;
}

namespace {

// heap_malloc_slow's swap of a direct page's local_free into its free list, or
// null when malloc_generic must do it. CountLocal: local frees are counted
// (statistics published), in a copy of its own so that the common case tests
// no flag for it.
template <bool CountLocal>
MI_ALWAYS_INLINE Block* slow_swap(Heap* heap, Page* page, Block* block, bool zero) {
  Tld* tld = heap->tld;
  const long every = option_get(mi_option_generic_collect);
  if (MI_LIKELY(((tld->heartbeat + 1) & 31) != 0 &&
                (every <= 0 || heap->generic_count + 1 < static_cast<size_t>(every)))) {
    // the blocks not in use, all in local_free now (page_stat_add: a
    // direct page's blocks are counted when they go to `free`)
    const int64_t avail = static_cast<int64_t>(page->capacity) - static_cast<int64_t>(page->used);
    Block* const next = block_next(page, block);
    // page_free_collect's tests for a double free (the count of blocks
    // in use wrapped: none available; a block freed twice in a row: the
    // list loops on its head) and the secure option's walk of the lists
    // are malloc_generic's to make (it reports)
    if (MI_LIKELY(avail > 0 && next != block && (MI_SECURE != 0 || !option_is_enabled(mi_option_secure)))) {
      // (a page kept empty for reuse stays marked so: its next free need
      // not call page_retire again, and heap_collect_retired unmarks it
      // while it has blocks in use)
#if MI_SECURE
      page->free = block_pop_next(page, block);  // checks the link, clears it
#else
      page->free = next;
#endif
      page->local_free = nullptr;
      page->free_is_zero = 0;
      page->used++;
      tld->heartbeat++;
      heap->generic_count++;
      own_counter_add(tld->stats.bin_malloc[page->bin], avail);
      // local_free held the avail blocks: local frees (as page_free_collect
      // counts them when it makes this swap)
      if constexpr (CountLocal) count_frees(page, avail, false);
      asan_block_alloc(page, block);
      if (zero) memset(block, 0, page->block_size);
      return block;
    }
  }
  return nullptr;
}

MI_NOINLINE void* slow_swap_counted(size_t size, Heap* heap, Page* page, Block* block, bool zero) {
  Block* b = slow_swap<true>(heap, page, block, zero);
  return b != nullptr ? b : malloc_generic(heap, size, zero, 0);
}

// The collect's common case for the first page of a 1-128 KiB size (a ring
// of blocks: local_free holds what this thread freed since, no other thread
// freed into the page, no local frees to count): the lists swapped here, with
// page_free_collect's double-free tests (the count wrapped; the head linked
// to itself) and none of its calls (pairs ring-32768, where a free list lasts
// one or two blocks: 164.6 -> 143.5 instructions per pair; random-4096 357.3
// -> 341.4). (Its blocks are not counted as they go to `free`: this path
// counts each allocation.) False: page_free_collect must do it.
MI_ALWAYS_INLINE bool queue_first_swap(Page* page, unsigned blockers) {
  Block* lf = page->local_free;
  if (MI_SECURE == 0 && lf != nullptr && blockers == 0 &&
      tf_block(page->xthread_free.load(std::memory_order_relaxed)) == nullptr && page->used < page->capacity &&
      block_next(page, lf) != lf && !option_is_enabled(mi_option_secure)) {
    page->free = lf;
    page->local_free = nullptr;
    page->free_is_zero = 0;
    return true;
  }
  return false;
}

// The pop, once the first page has a free block. (A zeroed block's memset is
// a tail call: no register of the caller's to keep.)
MI_ALWAYS_INLINE void* queue_first_take(Heap* heap, Tld* tld, Page* page, bool zero) {
  // (a page kept empty for reuse stays marked so, as slow_swap leaves it: its
  // next free need not call page_retire again -- pairs immediate-4096: 163 ->
  // 121 instructions per pair -- and heap_collect_retired unmarks it while
  // it has blocks in use)
  Block* block = page->free;
  page->free = block_pop_next(page, block);
  page->used++;
  tld->heartbeat++;
  heap->generic_count++;
  own_counter_add(tld->stats.bin_malloc[page->bin], 1);  // (not a direct page: counted per allocation)
  asan_block_alloc(page, block);
  if (zero) {
    if (!page->free_is_zero) return memset(block, 0, page->block_size);
    block->link = 0;
  }
  return block;
}

// A block of `bin` (above the direct sizes) that the heap holds: one it
// freed into its own full pages (heap/full_held.h), else, in the thread's
// backing heap, one of another thread's pages it keeps (heap/cross_cache.h;
// heap->cross_free is null in any other heap, and while an aligned
// allocation runs); nullptr: none.
MI_ALWAYS_INLINE Block* held_take(Heap* heap, Tld* tld, size_t bin) {
  Block* b = *full_held_list(heap, bin);
  if (b != nullptr) {
    full_held_take(heap, bin, b);
    return b;
  }
  if (heap->cross_free != nullptr) {
    b = tld->cross_medium[bin - FULL_HELD_BIN0];
    if (b != nullptr) cross_cache_take_medium(tld, b, bin);
  }
  return b;
}

// The CPU the thread runs on: its rseq area's, else sched_getcpu's.
MI_ALWAYS_INLINE int cpu_now() {
  const int cpu = rseq_cpu();
  return (cpu >= 0) ? cpu : sched_getcpu();
}

// A held block handed out and counted (per allocation, as queue_first_take
// counts).
MI_ALWAYS_INLINE void* held_alloc(Tld* tld, size_t bin, Block* block, bool zero) {
  own_counter_add(tld->stats.bin_malloc[bin], 1);
  if (zero) return memset(block, 0, bin_block_sizes[bin]);
  return block;
}

// The same outside malloc_generic: the call it saves still counts as one
// (the heartbeat and generic_count, which pace the periodic work).
MI_ALWAYS_INLINE void* held_alloc_counted(Heap* heap, Tld* tld, size_t bin, Block* block, bool zero) {
  tld->heartbeat++;
  heap->generic_count++;
  return held_alloc(tld, bin, block, zero);
}

// malloc_queue_first's cases that make calls: a machine of several nodes
// where the rseq area's CPU is not the one the last slow path saw, or where
// there is no rseq area (a thread that moved to another node:
// malloc_generic moves it first, else a program of these sizes refills the
// old node's pages for up to 31 calls, and the small sizes' slow swaps with
// them: the numa-vm migrate shapes' small-block pages fell from 100% to
// 96.1% on the new node), and a first page whose lists need
// page_free_collect, or that has no free block at all (the queue's search).
MI_NOINLINE void* malloc_queue_first_calls(size_t size, Heap* heap, Page* page, bool zero, unsigned blockers) {
  Tld* tld = heap->tld;
  const bool several_nodes = numa_nodes_in_use.load(std::memory_order_relaxed) > 1;
  if (several_nodes && cpu_now() != tld->cpu) return malloc_generic(heap, size, zero, 0);
  if (page->free == nullptr && !queue_first_swap(page, blockers)) {
    // A held block, once the CPU is known not to have changed (else it could
    // be of the old node), where malloc_queue_first could not tell (no rseq
    // area). Before, several nodes sent every allocation that a held block
    // would serve to malloc_generic: random-4096 317 instructions a pair
    // instead of 145 (tests/bench/instructions-2node.golden).
    if (several_nodes) {
      Block* held = held_take(heap, tld, page->bin);
      if (held != nullptr) return held_alloc_counted(heap, tld, page->bin, held, zero);
    }
    page_free_collect(page, false);
    if (page->free == nullptr) {
      // The first page has nothing: the queue's other pages, or a fresh one,
      // as malloc_generic's find_page would, without its other work, which
      // malloc_queue_first found not due -- but for other threads' batches
      // of frees, which may bring blocks (remote_batch_receive). A producer
      // whose 2-4 KiB blocks a consumer frees (numa-vm shape-churn) came
      // here for 84% of those allocations, each a full malloc_generic.
      if (remote_batch_waiting(tld) || tld->heartbeat == 0) return malloc_generic(heap, size, zero, 0);
      // Its untouched room, where its memory was used before: what
      // page_queue_find_free would pick without looking further (it extends
      // such a page at once, no new memory), here without its call, its
      // second collect and its loop (a search of one step, as counted).
      // Blocks of 4 KiB and more are extended one at a time (extend_step),
      // so a producer whose blocks another thread frees, each page emptied,
      // given back and taken again between its batches, came here for most
      // of its allocations (pairs remote-4096).
      if (page->capacity < page->reserved && !page->is_zero_init) {
        page_extend_free(page);
        tld->stats.page_searches++;
        tld->stats.page_search_steps++;
        return queue_first_take(heap, tld, page, zero);
      }
      page = page_queue_find_free(heap, &heap->pages[page->bin], true);
      if (page == nullptr) return malloc_generic(heap, size, zero, 0);  // (a shortage: it retries and reports)
    }
  }
  return queue_first_take(heap, tld, page, zero);
}

// malloc_queue_first's case of a size whose queue is empty (every page of it
// in the full queue, as a cache's are): a block the heap holds
// (heap/full_held.h), when none of malloc_generic's work is due; else
// malloc_generic.
MI_NOINLINE void* malloc_queue_held(size_t size, Heap* heap, bool zero) {
  Tld* tld = heap->tld;  // (null in heap_empty)
  const long every = option_get(mi_option_generic_collect);
  if (tld == nullptr || ((tld->heartbeat + 1) & 31) == 0 ||
      (every > 0 && heap->generic_count + 1 >= static_cast<size_t>(every)) ||
      heap->thread_delayed_free.load(std::memory_order_relaxed) != nullptr ||
      (slow_swap_blockers.load(std::memory_order_relaxed) & SWAP_DEFERRED_FREE) != 0) {
    return malloc_generic(heap, size, zero, 0);
  }
  // a thread that moved to another node moves first (malloc_generic)
  if (numa_nodes_in_use.load(std::memory_order_relaxed) > 1 && cpu_now() != tld->cpu) {
    return malloc_generic(heap, size, zero, 0);
  }
  const size_t bin = medium_bin_of_size(size);
  Block* held = held_take(heap, tld, bin);
  if (held == nullptr) return malloc_generic(heap, size, zero, 0);
  return held_alloc_counted(heap, tld, bin, held, zero);
}

// heap_malloc_slow's common case for the sizes above the direct ones (1 KiB to
// 128 KiB: small and medium pages, no direct page): the first page of the
// size's queue -- the one malloc_generic looks at first -- has a free block,
// or gets some from its local and thread-free lists (the swap above, else
// page_free_collect, as find_free_page makes it); else, or when
// malloc_generic's other work is due (the same tests as slow_swap: every 32nd
// call, the generic_collect count, delayed frees, a deferred-free callback),
// malloc_generic. Every allocation of these sizes took malloc_generic whole
// before: ~270 instructions per malloc+free pair of 4 KiB blocks (pairs ring
// 4096), the size of RocksDB's block-cache blocks, where malloc_generic and
// its callees were the library's largest share of instruction-cache misses
// (callgrind --cache-sim on db_bench readrandom).
// Out of line, and every call in it a tail call (malloc_generic's, the rare
// cases', memset's), so that it saves no register: heap_malloc_slow's direct
// case keeps its few (inlined, this path made every call of heap_malloc_slow
// save five: pairs cycle +6% instructions), and its own common case, the pop
// or the swap, saves none (pairs immediate-4096 118.6 -> 105.1, ring-4096
// 141.4 -> 130.4, ring-32768 143.5 -> 129.5, random-4096 341.4 -> 332.3).
MI_NOINLINE void* malloc_queue_first(size_t size, Heap* heap, bool zero) {
  Page* page = heap->pages[medium_bin_of_size(size)].first;
  if (page == nullptr) return malloc_queue_held(size, heap, zero);  // (an uninitialised heap has no pages)
  Tld* tld = heap->tld;
  const long every = option_get(mi_option_generic_collect);
  const unsigned blockers = slow_swap_blockers.load(std::memory_order_relaxed);
  if (MI_UNLIKELY(((tld->heartbeat + 1) & 31) == 0 ||
                  (every > 0 && heap->generic_count + 1 >= static_cast<size_t>(every)) ||
                  heap->thread_delayed_free.load(std::memory_order_relaxed) != nullptr ||
                  (blockers & SWAP_DEFERRED_FREE) != 0)) {
    return malloc_generic(heap, size, zero, 0);
  }
  // Several nodes: the CPU as the last slow path saw it, read from the rseq
  // area (no call, so no stack frame here); else malloc_queue_first_calls
  // asks sched_getcpu and moves the thread if it moved.
  if (MI_UNLIKELY(numa_nodes_in_use.load(std::memory_order_relaxed) > 1) && rseq_cpu() != tld->cpu) {
    return malloc_queue_first_calls(size, heap, page, zero, blockers);
  }
  if (page->free == nullptr && !queue_first_swap(page, blockers)) {
    // the first page has no free block at hand: a block the heap holds
    // (heap/full_held.h: freed into a full page), else the page's other
    // frees (page_free_collect) or malloc_generic
    Block* held = held_take(heap, tld, page->bin);
    if (held != nullptr) return held_alloc_counted(heap, tld, page->bin, held, zero);
    return malloc_queue_first_calls(size, heap, page, zero, blockers);
  }
  return queue_first_take(heap, tld, page, zero);
}

// heap_malloc_slow's case of a small size, whose direct page has no free
// block. The common case: blocks this thread freed wait in its local_free, no
// other thread freed into it, and none of malloc_generic's other work is due
// (delayed frees, the deferred-free callback, the periodic purge and
// collect): the lists are swapped here, with none of the calls
// malloc_generic makes. (Its cost is paid once per free list: pairs cycle,
// with lists of 1 to 3 blocks, calls this on a quarter of its allocations.)
// With statistics published the swap counts local frees, out of this path's
// way (slow_swap_blockers: one test for both).
MI_ALWAYS_INLINE void* small_slow(size_t size, Heap* heap, Page* page, bool zero) {
  // First the blocks of other threads' pages that this thread freed
  // (heap/cross_cache.h), for its backing heap only (the others have no
  // lists): its own pages' frees can wait, those blocks would go back to
  // their owner. (page_empty, the page of a bin with no page, has no block
  // size: its list, of size 0, is empty; malloc_generic looks.)
  Block** cross = heap->cross_free;
  if (cross != nullptr) {
    const size_t bsize = page->small_block_size;  // (line 1, which the fast path read)
    Block* b = *cross_cache_list(cross, bsize);
    if (b != nullptr) {
      cross_cache_take(heap->tld, b, bsize);
      if (zero) memset(b, 0, bsize);
      return b;
    }
  }
  Block* block = page->local_free;  // page_empty (an uninitialised heap) has none
  if (MI_LIKELY(block != nullptr && tf_block(page->xthread_free.load(std::memory_order_relaxed)) == nullptr &&
                heap->thread_delayed_free.load(std::memory_order_relaxed) == nullptr)) {
    const unsigned blockers = slow_swap_blockers.load(std::memory_order_relaxed);
    if (MI_LIKELY(blockers == 0)) {
      Block* b = slow_swap<false>(heap, page, block, zero);
      if (MI_LIKELY(b != nullptr)) return b;
    } else if (blockers == SWAP_COUNT_LOCAL) {
      return slow_swap_counted(size, heap, page, block, zero);
    }
  }
  return malloc_generic(heap, size, zero, 0);
}

}  // namespace

void* heap_malloc_slow(size_t size, Heap* heap, bool zero) noexcept {
  if (MI_LIKELY(size <= SMALL_SIZE_MAX)) return small_slow(size, heap, heap_direct_page(heap, size), zero);
  if (MI_LIKELY(size <= MEDIUM_OBJ_SIZE_MAX)) return malloc_queue_first(size, heap, zero);
  return malloc_generic(heap, size, zero, 0);
}

void* heap_malloc_small_slow(size_t size, Heap* heap, Page* page) noexcept {
  return small_slow(size, heap, page, false);
}

void* heap_malloc_small_slow_zero(size_t size, Heap* heap, Page* page) noexcept {
  return small_slow(size, heap, page, true);
}

void* malloc_generic(Heap* heap, size_t size, bool zero, size_t huge_alignment) noexcept {
  if (MI_UNLIKELY(!heap_is_initialized(heap))) {
    heap = thread_heap_init();
    if (heap == nullptr) {
      error_message(ENOMEM, "cannot initialise the thread: no memory for its heap (request of %zu bytes)", size);
      errno = ENOMEM;
      return nullptr;
    }
  }
  Tld* tld = heap->tld;
  tld->heartbeat++;
  // A thread moved to another node allocates there from its next slow path
  // on (heap/migrate.cpp); one load on a one-node machine, else the CPU
  // (rseq: a few instructions) compared with the last one seen
  if (numa_nodes_in_use.load(std::memory_order_relaxed) > 1) {
    const int cpu = cpu_now();
    if (MI_UNLIKELY(cpu != tld->cpu)) {
      tld->cpu = cpu;
      const int node = numa_node_at_cpu(cpu);
      if (node != tld->node) heap_thread_moved(tld, node);
    }
  }
  heap_deferred_free(heap, false);
  // tested here: an empty list (the common case) costs no call and no stack frame
  if (heap->thread_delayed_free.load(std::memory_order_relaxed) != nullptr) delayed_list_free_partial(heap);
  // other threads' frees into our pages, sent in batches; ours into theirs
  if (remote_batch_waiting(tld)) remote_batch_receive(tld);

  // The thread's first generic call: a background thread purger_start left
  // for the process's first allocation (the statistics publisher) starts.
  if (MI_UNLIKELY(tld->heartbeat == 1)) purger_poll();
  // Periodic work, cheap to test: purges that fell due, a full collect now
  // and then (option generic_collect).
  if ((tld->heartbeat & 31) == 0) {
    if (tld->remote_out.n != 0) remote_batch_send_all(tld);
    segments_try_purge(false, false);
    arenas_try_purge(false);
    if (abandoned_unpurged_n.load(std::memory_order_relaxed) != 0) heap_purge_abandoned(false);
    purger_poll();
    long target = option_get(mi_option_target_segments_per_thread);
    if (target > 0 && tld->segments.count > static_cast<size_t>(target)) segments_try_purge(true);
  }
  long every = option_get(mi_option_generic_collect);
  if (every > 0 && ++heap->generic_count >= static_cast<size_t>(every)) {
    heap->generic_count = 0;
    heap_collect(heap, Collect::normal);
  }

  // a small size with no page of its bin (small_slow had page_empty): the
  // blocks of other threads' pages this thread holds first (heap/cross_cache.h)
  if (size <= SMALL_SIZE_MAX && heap->cross_free != nullptr && huge_alignment == 0) {
    const size_t bsize = good_block_size(size);
    Block* b = *cross_cache_list(heap->cross_free, bsize);
    if (b != nullptr) {
      cross_cache_take(tld, b, bsize);
      if (zero) memset(b, 0, bsize);
      return b;
    }
  }
  // the sizes above: the blocks freed into the heap's own full pages first
  // (heap/full_held.h; a collect above gave them back; not on a thread that
  // just moved to another node: heap_thread_moved gave them back too)
  // (not for a block realloc grows past the small sizes: find_page)
  if (size > SMALL_SIZE_MAX && size <= MEDIUM_OBJ_SIZE_MAX && huge_alignment == 0 &&
      (size <= SMALL_OBJ_SIZE_MAX || !tld->segments.realloc_growing)) {
    const size_t bin = medium_bin_of_size(size);
    Block* b = held_take(heap, tld, bin);
    if (b != nullptr) return held_alloc(tld, bin, b, zero);
  }
  Page* page = find_page(heap, size, huge_alignment);
  if (MI_UNLIKELY(page == nullptr)) {
    // Impossible: no collect, no retry, no message by default. (Tested only
    // here, after find_page refused it: the slow path's common case pays
    // nothing -- tools/fastpath-count.)
    if (!alloc_request_possible(size, huge_alignment)) return alloc_impossible(1, size, huge_alignment);
    heap_collect(heap, Collect::force);  // give back what we can, then try once more
    const int saved = errno;
    errno = 0;  // so that a failure below names the OS's reason, not a stale one
    page = find_page(heap, size, huge_alignment);
    if (page != nullptr) errno = saved;
  }
  if (MI_UNLIKELY(page == nullptr)) {
    // A real shortage, said once here for both attempts (the layers below
    // do not report a failed request themselves), with its cause.
    const int os_err = errno;
    if (failures_quiet) {
      // a retry of a failure said already
    } else if (heap->arena_id != 0) {
      error_message(ENOMEM,
                    "unable to allocate memory (%zu bytes): the heap's arena %d is full (a heap bound to an arena "
                    "takes no other memory)",
                    size, heap->arena_id);
    } else if (option_is_enabled(mi_option_disallow_os_alloc)) {
      error_message(ENOMEM,
                    "unable to allocate memory (%zu bytes): the arenas are full and disallow_os_alloc forbids "
                    "OS memory",
                    size);
    } else if (huge_alignment > 0) {
      error_message(ENOMEM, "unable to allocate memory (%zu bytes aligned to %zu): %s", size, huge_alignment,
                    errno_text(os_err != 0 ? os_err : ENOMEM));
    } else {
      error_message(ENOMEM, "unable to allocate memory (%zu bytes): %s", size,
                    errno_text(os_err != 0 ? os_err : ENOMEM));
    }
    errno = ENOMEM;
    return nullptr;
  }
  MI_ASSERT(page->free != nullptr);
  Block* block = page_free_pop(page, zero);
  PageQueue* pq = heap_page_queue_of(heap, page);
  // a huge page, or a grown one of a medium bin (find_page), is full now:
  // no search of its bin should find it first
  if (page_queue_is_huge(pq) || (page->reserved == 1 && page->block_size <= MEDIUM_OBJ_SIZE_MAX)) {
    page_to_full(page, pq);
  }
  heap_stat_malloc(heap, size, page);
  MI_ASSERT_EXPENSIVE(page_is_valid(page));
  MI_ASSERT_EXPENSIVE(heap_is_valid(heap));
  return block;
}

}  // namespace mi
