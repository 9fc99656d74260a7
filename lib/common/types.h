// types.h: the core types of the allocator, in a few lines each. Read this first.
//
//   Block      a free block: one word, the link to the next block in its list
//              (heap/free_list.h: encoded in the secure build).
//   Page       a run of memory holding blocks of one size class, with three
//              free lists (free, local_free, thread_free) and a live count.
//   Segment    an aligned chunk (SEGMENT_SIZE; a huge object's is sized to
//              it, to the OS page) from an arena or the OS; its header holds the page table, so a
//              pointer finds its segment with a mask and its page by a shift.
//   Heap       (mi_heap_t) per-thread allocation state: a page queue per size
//              class and a direct table from small sizes to a page with free
//              blocks. Only the owning thread allocates from a heap.
//   Tld        thread-local data shared by a thread's heaps: its segments
//              with free pages, its statistics, its heaps.
//   MemId      where a segment's memory came from, and in what state.
//
// Memory layout of a small-page segment (SEGMENT_SIZE = 4 MiB):
//   [Segment header + Page[64] | page 0 blocks ... | page 1 (64 KiB) | ... | page 63]
// Medium segments have 8 pages of 512 KiB. Large segments have 64 slices of
// 64 KiB; each large object (128 KiB .. 2 MiB) gets a page of its own that
// spans as many slices as it needs, so its memory is purged when it is freed
// (so does a medium one that realloc keeps growing, to grow in place:
// api/alloc.cpp heap_realloc_zero). A huge object gets a segment of its own.
//
// Ownership: a segment, its pages and their `free`/`local_free` lists belong
// to one thread (segment->thread_id). Other threads touch only the atomic
// `xthread_free` list of a page, the heap's `thread_delayed_free` list, and
// abandoned segments under the abandoned-list lock (segment/abandon.cpp).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "defines.h"

struct mi_heap_s;  // the public mi_heap_t; defined below

namespace mi {

using Heap = ::mi_heap_s;

// ---------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------
constexpr size_t WORD_SIZE = sizeof(void*);
constexpr unsigned SEGMENT_SHIFT = 22;
constexpr size_t SEGMENT_SIZE = size_t{1} << SEGMENT_SHIFT;  // 4 MiB
constexpr uintptr_t SEGMENT_MASK = SEGMENT_SIZE - 1;

constexpr unsigned SMALL_PAGE_SHIFT = 16;   // 64 KiB
constexpr unsigned MEDIUM_PAGE_SHIFT = 19;  // 512 KiB
constexpr size_t SMALL_PAGE_SIZE = size_t{1} << SMALL_PAGE_SHIFT;
constexpr size_t MEDIUM_PAGE_SIZE = size_t{1} << MEDIUM_PAGE_SHIFT;
constexpr size_t SMALL_PAGES_PER_SEGMENT = SEGMENT_SIZE / SMALL_PAGE_SIZE;    // 64
constexpr size_t MEDIUM_PAGES_PER_SEGMENT = SEGMENT_SIZE / MEDIUM_PAGE_SIZE;  // 8

// Largest block of each page kind: at least 4 blocks per small/medium page.
constexpr size_t SMALL_OBJ_SIZE_MAX = SMALL_PAGE_SIZE / 4;    // 16 KiB
constexpr size_t MEDIUM_OBJ_SIZE_MAX = MEDIUM_PAGE_SIZE / 4;  // 128 KiB
constexpr size_t LARGE_OBJ_SIZE_MAX = SEGMENT_SIZE / 2;       // 2 MiB; beyond: huge
constexpr size_t LARGE_OBJ_WSIZE_MAX = LARGE_OBJ_SIZE_MAX / WORD_SIZE;

// Sizes up to SMALL_SIZE_MAX are looked up directly, in two steps through
// the heap: its size class, heap->direct_bin[size] (a byte per byte size),
// then the first page of the class's queue, heap->direct_page[bin]. One
// load more than a table of pages indexed by the size in bytes (8 KiB per
// heap, which this replaced), none of the rounding to words that a table of
// pages indexed by words costs (two instructions: immediate-128 pairs 39.0
// -> 41.0, past issue 12's 40); the lines a program whose sizes spread over
// the whole range touches: 17 of class bytes and 5 of page pointers, not
// 129 of page pointers that its own traffic evicts (larson_bench, 16-1024 B
// at random, 100 epochs under cachegrind: size_class.h heap_direct_page).
constexpr size_t SMALL_WSIZE_MAX = 128;
constexpr size_t SMALL_SIZE_MAX = SMALL_WSIZE_MAX * WORD_SIZE;  // 1 KiB
constexpr size_t PAGES_DIRECT = SMALL_SIZE_MAX + 1;

// Free lists are extended lazily, at most this many bytes at a time, so a
// page's untouched tail costs no RSS.
constexpr size_t MAX_EXTEND_SIZE = 4 * KiB;
constexpr size_t MIN_EXTEND = 4;

// Blocks whose size is a multiple of a power of two up to this alignment are
// aligned to it (page starts are aligned accordingly).
constexpr size_t MAX_ALIGN_GUARANTEE = 8 * KiB;
// Alignments up to this are served inside regular pages by over-allocation.
constexpr size_t MAX_ALIGN_IN_PAGE = 64 * KiB;

// Size classes ("bins"): exact word sizes up to 16 words (128 B), then 4
// classes per doubling (rounding under 25%), but 8 in the doublings of words
// [2^BIN_FINE_LO_SHIFT, 2^BIN_FINE_HI_SHIFT): 512 B to 1 KiB, rounding under
// 12.5% (see size_class.h).
constexpr size_t BIN_EXACT_MAX = 16;
constexpr size_t BIN_FINE_LO_SHIFT = 6;  // 512 B
constexpr size_t BIN_FINE_HI_SHIFT = 7;  // 1 KiB
constexpr size_t BIN_LARGE_MAX =         // bin of LARGE_OBJ_SIZE_MAX (2^18 words): 76
    BIN_EXACT_MAX + 4 * (BIN_FINE_LO_SHIFT - 4) + 8 * (BIN_FINE_HI_SHIFT - BIN_FINE_LO_SHIFT) +
    4 * (18 - BIN_FINE_HI_SHIFT);
constexpr size_t FULL_HELD_BINS = 28;  // bins of (SMALL_SIZE_MAX, MEDIUM_OBJ_SIZE_MAX] (heap/full_held.h checks it)
constexpr size_t BIN_HUGE = BIN_LARGE_MAX + 1;
constexpr size_t BIN_FULL = BIN_HUGE + 1;
constexpr size_t BIN_COUNT = BIN_FULL + 1;  // page queues per heap

// Huge objects at least this large bypass arenas (direct OS mappings).
constexpr size_t HUGE_OS_DIRECT_MIN = 256 * MiB;

// The largest mapping asked of the OS (a huge segment): 64 TiB, half of
// x86-64's user address space (47 bits; arm64's 48 bits give 256 TiB).
constexpr size_t OS_ALLOC_MAX = size_t{1} << 46;
// Where a request becomes impossible: its huge segment (header, block, room
// for the alignment) would exceed OS_ALLOC_MAX. Such a request fails at once
// with ENOMEM and prints nothing by default, as glibc and jemalloc do for a
// request that can never be met; only a request below the line that finds no
// memory is an out-of-memory error (heap/page.cpp, malloc_generic).
constexpr size_t ALLOC_SIZE_MAX = OS_ALLOC_MAX - SEGMENT_SIZE;
// Could a request of `size` bytes at `alignment` (0 or a power of two) ever be
// met? Overflow-free for every argument.
constexpr bool alloc_request_possible(size_t size, size_t alignment) {
  return size <= ALLOC_SIZE_MAX && alignment <= ALLOC_SIZE_MAX - size;
}

// ---------------------------------------------------------------------------
// Blocks, pages
// ---------------------------------------------------------------------------
// Read and written only through heap/free_list.h (block_next, block_set_next):
// in the secure build (MI_SECURE) the link is encoded with the page's keys.
struct Block {
  uintptr_t link;
};

enum class PageKind : uint8_t { small, medium, large, huge };

// Low two bits of Page::xthread_free: the delayed-free handshake state.
// A page in the heap's full queue is set to use_delayed_free: the next thread
// that frees into it pushes that block onto the heap's thread_delayed_free
// list, so the owner learns the page has space again (page.cpp).
enum class Delayed : uintptr_t {
  use_delayed_free = 0,   // next cross-thread free goes to heap->thread_delayed_free
  delayed_freeing = 1,    // a thread is pushing onto heap->thread_delayed_free now
  no_delayed_free = 2,    // cross-thread frees go to xthread_free
  never_delayed_free = 3  // ditto, and never switch (abandoned pages)
};
constexpr uintptr_t DELAYED_MASK = 3;

// Page::xthread_free is one word: the head of the list of blocks other
// threads freed into the page (bits 3..46: a block pointer, below the 47-bit
// user address space every segment lies in: segment/segmap.h), the Delayed
// state (bits 0..1) and, in bits 48..63, how many blocks the list holds. A
// freeing thread adds one to the count in the same compare-and-swap that
// pushes its block, so the owner that takes the list knows its length
// without walking it: a walk is a chain of cache misses, one per block, all
// written by the other thread (larson: most of the cost of a remote free).
// A page holds at most 65535 blocks (Page::reserved), so the count of a
// valid list never overflows its 16 bits.
constexpr unsigned THREAD_FREE_COUNT_SHIFT = 48;
constexpr uintptr_t THREAD_FREE_COUNT_ONE = uintptr_t{1} << THREAD_FREE_COUNT_SHIFT;
constexpr uintptr_t THREAD_FREE_BLOCK_MASK = (THREAD_FREE_COUNT_ONE - 1) & ~DELAYED_MASK;
MI_ALWAYS_INLINE Block* thread_free_block(uintptr_t tf) {
  return reinterpret_cast<Block*>(tf & THREAD_FREE_BLOCK_MASK);
}
MI_ALWAYS_INLINE size_t thread_free_count(uintptr_t tf) { return static_cast<size_t>(tf >> THREAD_FREE_COUNT_SHIFT); }
MI_ALWAYS_INLINE Delayed thread_free_delayed(uintptr_t tf) { return static_cast<Delayed>(tf & DELAYED_MASK); }
// tf with `b` pushed: b its head, one more in the count, the state kept.
MI_ALWAYS_INLINE uintptr_t thread_free_pushed(uintptr_t tf, const Block* b) {
  return ((tf & ~THREAD_FREE_BLOCK_MASK) + THREAD_FREE_COUNT_ONE) | reinterpret_cast<uintptr_t>(b);
}

// Page::xowner: the owner thread's id (thread_id(), 0 when the page is not in
// use or its segment is abandoned) with, in its low bits, the flags that send
// a free to the slow path. The free fast path is one load and one compare of
// this word against the thread pointer: equal means "our page, no flag set".
// The owner thread writes it (a reclaiming thread after taking the segment
// under the abandoned-list lock); other threads only read it.
enum PageFlag : uintptr_t {
  PAGE_IN_FULL = 1,      // in the heap's full queue
  PAGE_HAS_ALIGNED = 2,  // some block was handed out at an interior aligned pointer
  PAGE_INNER_SLICE = 4,  // a later slice of a large page (slice_offset says where its page starts)
  // Every free of a pointer into this page is checked (api/free.cpp,
  // free_not_fast): large and huge pages (one block, whose start is the only
  // pointer that may be freed), pages not in use, and the later slices of a
  // large page. Costs the fast path nothing: it compares the whole word anyway.
  PAGE_FREE_CHECKED = 8,
};
constexpr uintptr_t PAGE_FLAGS_MASK = 15;  // thread ids (the thread pointer) are 16-byte aligned at least

// The page table's entries start 16 bytes into a cache line
// (Segment::pages), so each entry spans two lines and a quarter: bytes 0-47
// (with the previous entry's last 16), bytes 48-111, and bytes 112-127 (with
// the next entry's first 48). The first line holds what the owner thread
// writes on its fast paths (free, used, local_free) and in its slow paths;
// the second what other threads read or write when they free into the page
// (xowner, segment_in_use, block_size, xthread_free), which the owner only
// reads on its fast paths. A thread that frees blocks of a page its owner is
// allocating from (larson, a producer and its consumer) reads a line the
// owner does not write on every malloc and free: with both on one line each
// such free missed on it, and a free that pushed onto xthread_free took it
// from the owner, whose next malloc took it back (xthread_bench CPU time,
// medians of 8 alternated runs, twice: 0.31-0.32 -> 0.27 s; xfree_bench 0.24
// -> 0.22 s; larson_bench, whose frees mostly keep the block, 0.84 s both).
// The price: the owner's free touches two lines of the entry, not one
// (churn_bench under cachegrind: 5% more L1 data misses, all L2 hits; its
// CPU time, 10 alternated runs: 0.41 s both).
struct Page {
  // --- line 1: the owner thread's fast paths (malloc: free, used; free:
  // local_free, used) and its slow paths
  Block* free;               // blocks to allocate from
  uint32_t used;             // live blocks (including ones in xthread_free not yet collected)
  uint8_t free_is_zero : 1;  // every block in `free` is zero apart from its next pointer
  uint8_t is_zero_init : 1;  // the page's memory was zero when the page was set up
  uint8_t
      free_parked : 1;  // abandoned and purged: `free` is empty, its blocks are the bits in next/prev (heap/abandoned_purge)
  uint8_t retire_expire;  // generic calls a retired-but-kept empty page survives
  uint8_t heap_tag;
  uint8_t bin;        // size class of block_size (set by the heap layer: page_init)
  Block* local_free;  // blocks freed by the owner thread
  // --- owner thread: the page queue
  Page* next;
  Page* prev;
  // --- owner thread, generic path
  uint16_t reserved;  // blocks that fit in the page
  uint8_t segment_idx;
  uint8_t slice_count;  // large pages: 64 KiB slices the page spans (else 1)
  // block_size again, on this line, set with `bin` (page_set_bin; 0 in
  // page_empty, and for blocks over 4 GiB, which no reader asks): the small
  // allocation slow path finds its size's list of held blocks
  // (heap/cross_cache.h) through the page its fast path read, and reads no
  // second line of the entry (larson_bench, whose allocations take those
  // lists 9 times in 10: a second line of each size's entry, evicted by the
  // program's own block traffic, missed at most of them)
  uint32_t small_block_size;
  // --- line 2: what other threads' frees read and write
  std::atomic<uintptr_t> xowner;  // owner thread id | PageFlag bits
  // Another thread's free pushes here (heap/remote_batch.h), on the line of
  // xowner, which it reads first: one line, not two (at byte 56 of a line
  // apart from xowner's: larson 0.650 -> 0.620 s, xthread 0.401 -> 0.360 s).
  std::atomic<uintptr_t> xthread_free;  // count | Block* | Delayed (thread_free_*, above)
  size_t block_size;
  uint8_t* page_start;
  std::atomic<Heap*> xheap;  // owning heap, null when abandoned
  // A byte of its own, not a bit beside free_is_zero (which the owner writes
  // as it extends the page): other threads read it (page_is_in_use, below).
  // 0: not in use; PAGE_IN_USE; PAGE_IN_USE_BATCHED: in use in a heap that
  // is never destroyed, so other threads' frees into it may be sent in
  // batches (heap/remote_batch.h; not a heap the program may destroy, which
  // mi_heap_destroy frees whole while a batch holds its blocks); a
  // page_shared_tag (below): that, in its owner thread's backing heap, and a
  // thread of that node may keep its blocks (heap/cross_cache.h).
  uint8_t segment_in_use;
  // On this line too, though the owner writes them (as it extends the
  // page; as it claims a large page): what the usable size of a block reads
  // (malloc_usable_size, realloc, sized delete's checks) is then one line,
  // not both (RocksDB asks it of every block its cache takes).
  uint8_t slice_offset;  // a slice inside a large page: how far back its page starts (else 0)
  uint16_t capacity;     // blocks made available so far (free-list extended up to here)
  // The block size of a small or medium page, kept after the page is freed:
  // its segment gives a free page back to the size that used it last first
  // (segment.cpp, free_page_pick). 0: never used, or large or huge.
  uint32_t last_block_size;
#if MI_SECURE
  // --- the secure build (heap/free_list.h)
  uintptr_t keys[2];    // free-list links are encoded with these (random per page)
  uint64_t block_div;   // block_size_divisor(block_size): is an offset a multiple of block_size, without a division
  uint64_t block_span;  // capacity * block_size: the offsets of the blocks made available so far
#else
  uint64_t unused[4];  // to 128 bytes (below)
#endif
};
// To a power of two in both builds: free() finds a page's entry with a shift instead of a multiply.
static_assert(sizeof(Page) == 128, "free() indexes the page table with a shift");
static_assert(offsetof(Page, local_free) + sizeof(Page::local_free) <= 48 &&
                  offsetof(Page, used) + sizeof(Page::used) <= 48,
              "the owner's fast-path fields on the entry's first line (the page table starts 16 bytes into a line)");
static_assert(offsetof(Page, xowner) >= 48 && offsetof(Page, segment_in_use) < 112 &&
                  offsetof(Page, capacity) + sizeof(Page::capacity) <= 112 && offsetof(Page, slice_offset) < 112 &&
                  offsetof(Page, xthread_free) + sizeof(Page::xthread_free) <= 112 &&
                  offsetof(Page, block_size) + sizeof(Page::block_size) <= 112,
              "what other threads' frees touch on the entry's second line");
constexpr unsigned PAGE_ENTRY_SHIFT = 7;

MI_ALWAYS_INLINE uintptr_t page_flags(const Page* page) {
  return page->xowner.load(std::memory_order_relaxed) & PAGE_FLAGS_MASK;
}
MI_ALWAYS_INLINE bool page_in_full(const Page* page) { return (page_flags(page) & PAGE_IN_FULL) != 0; }
MI_ALWAYS_INLINE bool page_has_aligned(const Page* page) { return (page_flags(page) & PAGE_HAS_ALIGNED) != 0; }
MI_ALWAYS_INLINE bool page_free_checked(const Page* page) { return (page_flags(page) & PAGE_FREE_CHECKED) != 0; }
// Sets or clears flag bits (the owner thread).
MI_ALWAYS_INLINE void page_set_flag(Page* page, uintptr_t flag, bool on) {
  const uintptr_t w = page->xowner.load(std::memory_order_relaxed);
  page->xowner.store(on ? (w | flag) : (w & ~flag), std::memory_order_relaxed);
}
// Sets the owner thread id, keeping the flags.
MI_ALWAYS_INLINE void page_set_owner(Page* page, uintptr_t tid) {
  const uintptr_t w = page->xowner.load(std::memory_order_relaxed);
  page->xowner.store(tid | (w & PAGE_FLAGS_MASK), std::memory_order_release);
}
MI_ALWAYS_INLINE uintptr_t page_owner(const Page* page) {
  return page->xowner.load(std::memory_order_relaxed) & ~PAGE_FLAGS_MASK;
}

// Fields the page's owner writes and any thread may read: whether the page
// is in use and its capacity (page_usable_size: realloc and mi_usable_size of
// a block another thread allocated; free_not_fast of a large block). The
// owner's writes and the other threads' reads are relaxed atomics (GCC's
// __atomic builtins on the plain fields, as std::atomic_ref does); the owner
// may read them plainly, as the only writer. Relaxed is enough: a block's
// page was set up before the block was handed out, and the program's
// hand-over of the pointer orders that before the other thread's read. On
// x86-64 each access is a plain load or store.
//
// segment_in_use: 0 not in use; PAGE_IN_USE; PAGE_IN_USE_BATCHED: other
// threads' frees into it may be sent in batches (heap/remote_batch.h); from
// PAGE_IN_USE_SHARED on: that too, and a thread of the page's node that frees
// one of its blocks may keep it for its own allocations (heap/cross_cache.h):
// PAGE_IN_USE_SHARED + 1 + node (node: its segment's, on a machine with
// several nodes in use; else -1), the value a thread compares with its
// Tld::cross_tag in one test.
constexpr uint8_t PAGE_IN_USE = 1;
constexpr uint8_t PAGE_IN_USE_BATCHED = 2;
constexpr uint8_t PAGE_IN_USE_SHARED = 3;
static_assert(PAGE_IN_USE_SHARED + 1 + NUMA_MAX_NODES <= 255);
constexpr uint8_t page_shared_tag(int node) {
  return static_cast<uint8_t>(PAGE_IN_USE_SHARED + 1 + (node < 0 ? -1 : node));
}
inline bool page_is_in_use(const Page* page) { return __atomic_load_n(&page->segment_in_use, __ATOMIC_RELAXED) != 0; }
inline void page_in_use_set(Page* page, bool in_use) {
  __atomic_store_n(&page->segment_in_use, static_cast<uint8_t>(in_use ? PAGE_IN_USE : 0), __ATOMIC_RELAXED);
}
// Other threads' frees into the page may be sent in batches (segment_in_use).
inline bool page_is_batched(const Page* page) {
  return __atomic_load_n(&page->segment_in_use, __ATOMIC_RELAXED) >= PAGE_IN_USE_BATCHED;
}
// in_use: PAGE_IN_USE, PAGE_IN_USE_BATCHED or a page_shared_tag.
inline void page_in_use_kind_set(Page* page, uint8_t in_use) {
  __atomic_store_n(&page->segment_in_use, in_use, __ATOMIC_RELAXED);
}
inline uint16_t page_capacity(const Page* page) { return __atomic_load_n(&page->capacity, __ATOMIC_RELAXED); }
inline void page_capacity_set(Page* page, uint16_t capacity) {
  __atomic_store_n(&page->capacity, capacity, __ATOMIC_RELAXED);
}

// ---------------------------------------------------------------------------
// Memory accounts
// ---------------------------------------------------------------------------
// Every byte the allocator maps is counted (reserved, committed, purged) for
// exactly one account, so that the rows of the statistics add up to the
// totals: a NUMA node's arenas, the arenas bound to no node, segments mapped
// outside arenas, and the allocator's own metadata. The statistics fold the
// unbound arenas into node 0 on a one-node machine (stats_snapshot.h).
constexpr int ACCOUNT_NODES = NUMA_MAX_NODES;    // one per NUMA node
constexpr int ACCOUNT_UNBOUND = ACCOUNT_NODES;   // arenas bound to no node
constexpr int ACCOUNT_OS = ACCOUNT_NODES + 1;    // segments mapped outside arenas
constexpr int ACCOUNT_META = ACCOUNT_NODES + 2;  // the allocator's own metadata (thread data, arena bitmaps)
constexpr int ACCOUNT_COUNT = ACCOUNT_NODES + 3;
constexpr int account_of_node(int node) { return (node >= 0 && node < ACCOUNT_NODES) ? node : ACCOUNT_UNBOUND; }

// ---------------------------------------------------------------------------
// Memory provenance
// ---------------------------------------------------------------------------
enum class MemKind : uint8_t {
  none,
  os,        // our own mmap; released with munmap
  arena,     // blocks of an arena (arena_index, block_index)
  external,  // memory the program handed us (mi_manage_os_memory): never released
  static_,   // part of our image (the main thread's data)
};

struct MemId {
  MemKind kind;
  bool is_pinned;                  // cannot be decommitted or purged (huge OS pages)
  bool is_large;                   // backed by 2 MiB or 1 GiB pages
  bool is_huge;                    // backed by 1 GiB pages
  bool initially_committed;        // all of it readable and writable
  bool initially_zero;             // all of it known to be zero
  bool is_accessible;              // mapped read-write and never protected: "commit" is only accounting
  int numa_node;                   // node the memory is bound to, -1 if none
  uint8_t account = ACCOUNT_META;  // what its bytes are counted for (ACCOUNT_*)
  uint32_t arena_index;            // for MemKind::arena
  uint32_t block_index;
  uint32_t block_count;
  uint32_t os_pad;  // for MemKind::os: bytes of the mapping below os_base, never used (os.cpp: alloc_aligned)
  void* os_base;    // for MemKind::os: the mapping to munmap (with os_pad below)
  size_t os_size;
};

// ---------------------------------------------------------------------------
// Segments
// ---------------------------------------------------------------------------
struct Segment {
  MemId memid;
  size_t segment_size;       // bytes (SEGMENT_SIZE for small/medium/large)
  size_t segment_info_size;  // header bytes, page 0 starts after them
  size_t committed_bytes;    // bytes of this segment we count as committed
  // Lazy commit and delayed purge of free pages (segment.cpp). Bit i = page i.
  // Written under state_lock (by the owner, or by a purge in another thread);
  // the atomic two are also read without it, as hints (segment.cpp says where).
  std::atomic<uint64_t> commit_mask;
  uint64_t purge_mask;                   // free pages waiting for their purge (freed this interval)
  uint64_t purge_aged_mask;              // ... and free for a whole interval already: purged when it ends
  std::atomic<int64_t> purge_expire_ms;  // when the pending purge is due (0: none)
  int64_t purge_deadline_ms;             // purge_expire_ms is never extended past this
  uint64_t purged_mask;                  // pages purged by the last interval's purge, not committed since
  uint8_t purge_backoff;                 // intervals are 2^backoff times longer while purged pages come back soon
  bool purge_regretted;                  // a page of purged_mask was committed again
  uint64_t free_mask;                    // pages not in use
  uint64_t dirty_mask;                   // pages used since the memory was last known zero
  // Queues of the owning thread's SegmentsTld (pages-free queue)
  Segment* next;
  Segment* prev;
  bool in_free_queue;
  uint8_t free_run_bin;  // large segments: the free queue they are in (SegmentsTld::large_free), by longest free run
  std::atomic<bool>
      in_purge_queue;  // on the purge list (segment.cpp: written under its lock, read without by the owner)
  Segment* purge_next;
  Segment* purge_prev;
  std::atomic<uint32_t> state_lock;  // guards the page masks against a purge from another thread
  // Every live segment, for the statistics (segment.cpp: segments_visit)
  Segment* all_next;
  Segment* all_prev;
  // Abandoned list (segment/abandon.cpp), protected by its lock
  Segment* abandoned_next;
  Segment* abandoned_prev;
  size_t abandoned;       // pages abandoned
  int64_t abandoned_ms;   // when it went on the abandoned list (os_clock_ms)
  bool abandoned_purged;  // its pages' free blocks were purged since (heap/abandoned_purge)
  size_t used;            // pages in use
  size_t capacity;        // pages
  int numa_node;
  int arena_id;         // public id of its arena (0: OS memory)
  int exclusive_arena;  // arena_id if that arena is exclusive, else 0
  PageKind page_kind;
  // Guard pages (the secure build, or the secure option: segment.cpp): an OS
  // page after the header and at the end of every page is left inaccessible,
  // so that a buffer overflow faults instead of reaching the next page's
  // blocks or a segment header.
  size_t guard_size;    // bytes of one guard (0: this segment has none)
  bool guard_protect;   // the guards are protected (not in pinned or 2 MiB-page memory)
  uint64_t guard_mask;  // pages (large: slices) whose last OS page is protected now
  size_t blocks_start;  // where page 0's blocks may start: after the header (and its guard)
  // A huge segment is sized to its block (segment_size, to the OS page), in
  // memory that may reach further (arena blocks of 4 MiB): the rest of the
  // 2 MiB range its block ends in, when readable and writable, is protected
  // for the segment's life (these bytes), so that transparent huge pages
  // never fault in memory past the end of the block (segment.cpp).
  size_t tail_protected;
  // An over-aligned huge block's segment (segment_huge_page_fit): the whole
  // OS pages between its page start and the block, the alignment's unused
  // room, decommitted (not in committed_bytes): offset from the segment's
  // start, and bytes (0: none).
  size_t hole_offset;
  size_t hole_size;
  // Abandoned by a fork() child for a thread that did not come along
  // (segment.cpp fork_child_abandon): its pages' lists are mended before
  // another thread uses them (heap/page.cpp segment_fork_mend).
  bool fork_orphan;
  // --- read on every free: keep together, just before the page table
  alignas(MI_CACHE_LINE) std::atomic<uintptr_t> thread_id;  // owner, 0 when abandoned
  size_t page_shift;
  Page pages[1];  // `capacity` entries
};
// The owner's hot fields of a page table entry (its first 48 bytes: Page) share a line.
static_assert(offsetof(Segment, pages) % MI_CACHE_LINE == 16, "page table entries start 16 bytes into a cache line");

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------
// Per-thread event counters (plain fields, merged into the process totals by
// stats.cpp at thread exit and on mi_stats_merge/print). Quantities that go up
// and down (pages, segments, bytes) are process-wide atomics in stats.h.
// Counters a thread keeps for itself that the statistics publisher
// (api/stats_publish) reads while the thread runs: written by their owner
// only, as one relaxed load and store (no lock prefix, no shared cache
// line), read with a relaxed load (never torn; a moment old at worst).
// A compiler does not fold a relaxed load and store into one instruction:
// on x86-64 the add is written as the one memory add a plain `+=` compiles
// to (heap_malloc_slow's refill counts its blocks on the path the golden
// instruction counts measure), a relaxed read-modify-write by its owner (an
// aligned 8-byte access is never torn). ThreadSanitizer builds keep the
// portable form, which it can see.
#if defined(__x86_64__) && !MI_TSAN
MI_ALWAYS_INLINE void own_counter_add(int64_t& c, int64_t n) { __asm__ volatile("addq %1, %0" : "+m"(c) : "er"(n)); }
#else
MI_ALWAYS_INLINE void own_counter_add(int64_t& c, int64_t n) {
  __atomic_store_n(&c, __atomic_load_n(&c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
#endif
inline int64_t own_counter_read(const int64_t& c) { return __atomic_load_n(&c, __ATOMIC_RELAXED); }
inline void own_counter_zero(int64_t& c) { __atomic_store_n(&c, 0, __ATOMIC_RELAXED); }

struct ThreadStats {
  int64_t pages_extended;
  int64_t page_searches;
  int64_t page_search_steps;
  int64_t pages_retired_kept;
  int64_t huge_allocs;
  int64_t huge_alloc_bytes;
  // Allocations by size class: own_counter_*. For the direct sizes (blocks
  // up to SMALL_SIZE_MAX) plus the blocks in the free lists of the thread's
  // pages of that class, counted when the slow path fills a free list
  // (page.cpp: the fast path counts nothing); heap_stats_merge subtracts
  // them. The publisher reads them live: ahead of the allocations by at most
  // the blocks waiting in the thread's free lists.
  int64_t bin_malloc[BIN_HUGE + 1];
  // Frees by the memory account of the block's segment (a node, ...): own_counter_*.
  // Remote: blocks other threads freed, counted when the owner collects them.
  // Local: blocks the owner freed, counted when its page's local free list is
  // collected or the page freed, and only while statistics are published
  // (stats_counting_local_frees: a freed page's count walks the list).
  int64_t remote_frees[ACCOUNT_COUNT];
  int64_t local_frees[ACCOUNT_COUNT];
};

// ---------------------------------------------------------------------------
// Heaps and thread data
// ---------------------------------------------------------------------------
// A page that never has free blocks (page_queue.h): every heap's direct table
// starts out pointing at it, so the fast path needs no null test.
extern MI_HIDDEN Page page_empty;
// The size classes of the direct sizes: 1 .. BIN_DIRECT_MAX (size_class.h checks it).
constexpr size_t BIN_DIRECT_MAX =
    BIN_EXACT_MAX + 4 * (BIN_FINE_LO_SHIFT - 4) + 8 * (BIN_FINE_HI_SHIFT - BIN_FINE_LO_SHIFT);
using DirectBins = std::array<uint8_t, PAGES_DIRECT>;       // size -> bin (heap_init sets it)
using DirectPages = std::array<Page*, BIN_DIRECT_MAX + 1>;  // bin -> first page of its queue, or page_empty
constexpr DirectPages empty_direct_pages() {
  DirectPages t{};
  for (Page*& p : t) p = &page_empty;
  return t;
}

struct PageQueue {
  Page* first;
  Page* last;
  size_t block_size;
};

struct SegmentQueue {
  Segment* first;
  Segment* last;
};

struct Tld;

// Large segments with a free slice are queued by the length of their
// longest run of free slices (bin = run - 1), with a bitmap of the bins that
// are not empty: a large page of n slices looks only at segments that may
// have room for it, the fullest first, instead of testing every segment
// (tools/bench/mixed_log: that walk was 60% of the instructions).
constexpr size_t LARGE_FREE_BINS = 64;  // runs of 1 .. 64 slices (SMALL_PAGES_PER_SEGMENT)

// Blocks of a thread's last realloc growths remembered (api/alloc.cpp).
constexpr size_t REALLOC_GROWN_SLOTS = 256;

struct SegmentsTld {
  SegmentQueue small_free;                   // small segments with a free page
  SegmentQueue medium_free;                  // medium segments with a free page
  SegmentQueue large_free[LARGE_FREE_BINS];  // large segments with a free slice, by their longest free run
  uint64_t large_free_bins;                  // bit b: large_free[b] is not empty
  size_t count;                              // segments owned
  size_t peak_count;
  size_t current_size;
  size_t peak_size;
  size_t eager_delay_left;  // segments still to be committed page by page (eager_commit_delay)
  bool realloc_growing;     // the block being allocated is a realloc's growth (heap/page.cpp find_page,
                            // segment.cpp huge_keeps_tail)
  ThreadStats* stats;
};

}  // namespace mi

// The public heap type: `mi_heap_t` is `struct mi_heap_s` in mimalloc.h.
struct mi_heap_s {
  mi::Tld* tld;
  std::atomic<mi::Block*> thread_delayed_free;  // blocks of full pages freed by other threads
  uintptr_t thread_id;
  int arena_id;             // 0 = any arena; otherwise only that arena
  int numa_node;            // -1 = the thread's node
  size_t page_count;        // pages in the queues
  size_t page_retired_min;  // range of queues that hold retired (kept) pages
  size_t page_retired_max;
  size_t generic_count;  // generic-path calls since the last periodic collect
  mi_heap_s* next;       // in the thread's list of heaps
  bool no_reclaim;       // never reclaims abandoned segments (destroyable heaps)
  uint8_t tag;
  // The backing heap: its thread's Tld::cross_free (heap/cross_cache.h);
  // null in any other heap, whose allocations take none of those blocks.
  mi::Block** cross_free;
  // Blocks freed into this heap's full pages, of the sizes above the direct
  // ones, held for its next allocations of their size (heap/full_held.h): a
  // list per bin, the bytes it may still hold, and at most.
  mi::Block* full_held[mi::FULL_HELD_BINS] = {};
  size_t full_held_room = 0;  // (heap_empty holds none)
  size_t full_held_max = 0;
  // size -> page with free blocks, in two steps (SMALL_WSIZE_MAX above):
  // all 0 in heap_empty, whose pages are all page_empty
  mi::DirectBins direct_bin = {};
  mi::DirectPages direct_page = mi::empty_direct_pages();
  mi::PageQueue pages[mi::BIN_COUNT];
};

namespace mi {

constexpr int TLD_NODE_HEAPS = NUMA_MAX_NODES;  // a heap per node (mi_malloc_on_node)

// A thread's run of frees into one page of another thread's, held to be sent
// to the owner in one batch (heap/remote_batch.cpp).
constexpr size_t REMOTE_OUT_BLOCKS = 128;
struct RemoteOut {
  Page* page;       // the page of the last remote free (null: none)
  uintptr_t owner;  // its owner thread's id then
  uint32_t n;       // blocks held (of that page, freed after the first)
  uint32_t limit;   // the batch is sent when it holds this many (0: that page's frees are not held)
  bool closed;      // the thread is exiting: frees are not held any more
  Block* blocks[REMOTE_OUT_BLOCKS];
};

// Tld::cpu before the thread's first slow path on a machine of several
// nodes: a value no CPU number and no "unknown" (-1: topology.h rseq_cpu,
// sched_getcpu's error) can equal, so the first comparison always fails.
constexpr int TLD_CPU_NONE = -0x7fffffff;

struct Tld {
  uint64_t heartbeat;                // generic-path calls (passed to deferred-free callbacks)
  bool recurse;                      // inside a deferred-free callback
  Heap* heap_backing;                // the thread's default heap, owns the Tld
  Heap* heaps;                       // all heaps of the thread
  Heap* node_heaps[TLD_NODE_HEAPS];  // heaps of mi_malloc_on_node, created on first use
  SegmentsTld segments;
  ThreadStats stats;
  uint64_t random;       // state of the thread's random numbers (heap/free_list.h); 0 until first used
  int node;              // the node its heaps last allocated on (heap/migrate.cpp); -1 before its first slow path
  int cpu;               // the CPU its last slow path ran on (TLD_CPU_NONE: none yet)
  RemoteOut remote_out;  // this thread's frees into other threads' pages, not yet sent
  // Blocks of other threads' pages this thread freed, kept for its own
  // allocations (heap/cross_cache.h): a list per block size in words (a
  // block's first word links it, not encoded), the bytes it may hold now and
  // at most, and may still take, whether it showed that it reuses them, and
  // the segment_in_use value of the pages whose blocks it may take (0 when
  // it takes none: the secure build, option cross_thread_cache 0, a thread
  // that does not reuse them, an exiting thread).
  uint8_t cross_tag;
  bool cross_reuses;
  size_t cross_limit;
  size_t cross_max;
  size_t cross_room;
  size_t cross_taken;       // held blocks handed out again (the thread reuses them)
  size_t cross_taken_then;  // cross_taken at the last look (cross_cache_passed)
  size_t cross_passed;      // frees not kept since then, the bound being reached
  size_t cross_stolen;      // blocks taken off other threads' pages' thread-free lists (cross_cache_steal)
  Block* cross_free[SMALL_WSIZE_MAX + 1];
  // ... and of the sizes above, up to MEDIUM_OBJ_SIZE_MAX: a list per bin
  // (as Heap::full_held), for the backing heap's allocations
  Block* cross_medium[FULL_HELD_BINS];
  // Batches of blocks other threads freed into this thread's pages
  // (heap/remote_batch.h): 0 none, REMOTE_IN_CLOSED after the thread's exit.
  // A line of its own: other threads' compare-and-swaps must not take the
  // lines the owner's slow path uses.
  alignas(MI_CACHE_LINE) std::atomic<uintptr_t> remote_in;
  uint8_t remote_in_pad[MI_CACHE_LINE - sizeof(std::atomic<uintptr_t>)];
  // The blocks realloc grew last, by a hash of their address (api/alloc.cpp:
  // bits 3-34 of each). Last (and last of heap/thread.cpp's ThreadData): 1 KiB
  // that a thread which never grows a block by realloc never touches (the
  // main thread's is in the library's .data, whose pages are resident once
  // written).
  uint32_t realloc_grown[REALLOC_GROWN_SLOTS];
};

}  // namespace mi
