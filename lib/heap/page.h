// page.h: pages and their free lists; the allocation slow path.
//
// Owns: setting a page up for a heap, extending its free list lazily,
// collecting the local and thread-free lists, the delayed-free handshake of
// full pages, retiring empty pages, and the generic allocation path that the
// fast path falls back to (page.cpp has the call tree).
// Invariants (page_is_valid, heap_check.h): used <= capacity <= reserved; the blocks in
// free + local_free + thread_free number capacity - used at most (exactly,
// once thread_free is collected); every block lies inside the page and on a
// block boundary.
// Thread-safety: owner thread only, except free_block_mt (any thread).
#pragma once

#include <cstddef>

#include "../common/types.h"
#include "heap_check.h"  // page_is_valid, heap_is_valid

namespace mi {

// The allocation slow path: the direct page has no free block, or the size is
// not small. Initialises the thread on its first call. huge_alignment > 0
// asks for a huge block with room for that alignment.
void* malloc_generic(Heap* heap, size_t size, bool zero, size_t huge_alignment) noexcept;
// The fast path's fallback (api/alloc_inline.h): malloc_generic, after trying
// its common case cheaply. The size comes first: it is in the first argument
// register already, so the fast path passes the heap without moving the size.
void* heap_malloc_slow(size_t size, Heap* heap, bool zero) noexcept;
// The same for a small size whose direct page (`page`, the fast path's) has
// no free block; `zero` in the name, not an argument: `malloc` then needs the
// page in the third argument register and pops the block into the return
// register (with a `zero` argument it kept the block in the register that
// passed zero = false and moved it to the return register: one instruction
// more per malloc).
void* heap_malloc_small_slow(size_t size, Heap* heap, Page* page) noexcept;
void* heap_malloc_small_slow_zero(size_t size, Heap* heap, Page* page) noexcept;
// A request that can never be met (count * size overflows, or beyond
// ALLOC_SIZE_MAX with its alignment): error callback EOVERFLOW, printed only
// when verbose; errno ENOMEM; returns nullptr.
void* alloc_impossible(size_t count, size_t size, size_t alignment) noexcept;
// While on, this thread's failed allocations are not reported (message and
// error callback): the C++ new_handler loop (api/new.cpp) retries a request
// whose failure was reported once.
void alloc_failures_quiet(bool on) noexcept;

// Frees a block of a page owned by the calling thread, when the fast path
// cannot (the page is full or has aligned blocks).
void free_block_local_slow(Page* page, Block* block) noexcept;
// Frees a block of a page owned by another thread (or abandoned).
void free_block_mt(Segment* segment, Page* page, Block* block) noexcept;
// The part of free_block_mt that pushes the block onto the page's thread-free
// list (or, the page being full in its owner's heap, the owner's delayed
// list). free_not_fast calls it first thing for a block of a page another
// thread owns with no aligned blocks and frees not checked: the common remote
// free, without free_block_mt's cases.
void free_block_remote(Page* page, Block* block) noexcept;
// Sets the page's heap (null: none), and whether other threads' frees into
// it may be sent in batches (heap/remote_batch.h: not into a destroyable
// heap) or kept by the freeing thread (heap/cross_cache.h: a backing heap's).
uint8_t page_in_use_kind(const Page* page, const Heap* heap) noexcept;
inline void page_set_heap(Page* page, Heap* heap) {
  page->xheap.store(heap, std::memory_order_release);
  if (page_is_in_use(page)) page_in_use_kind_set(page, page_in_use_kind(page, heap));
}
// The owner frees n blocks of its page that other threads freed and sent it
// (heap/remote_batch.h), linked first .. last: counted as remote frees.
void page_receive_blocks(Page* page, Block* first, Block* last, size_t n) noexcept;
// Called when a local free brought page->used to 0.
void page_retire(Page* page) noexcept;

// Collects local_free and the thread-free list into free. force: also when
// free is not empty (appends).
void page_free_collect(Page* page, bool force) noexcept;
// Sets the delayed-free state; waits for a concurrent delayed_freeing to end.
// override_never: also change never_delayed_free.
void page_use_delayed_free(Page* page, Delayed delay, bool override_never) noexcept;
bool page_try_use_delayed_free(Page* page, Delayed delay, bool override_never) noexcept;

// Frees an empty page back to its segment (removing it from its queue).
void page_free(Page* page, PageQueue* pq) noexcept;
// Thread exit: hands a page with live blocks to the segment layer.
void page_abandon(Page* page, PageQueue* pq) noexcept;
// Adopts a page of a reclaimed segment into `heap` (at the front of its
// queue); an empty one (no block in use) is retired (page_retire).
void page_reclaim(Heap* heap, Page* page) noexcept;

// Pushes a block onto the page's thread-free list when no other thread runs
// (a fork() child: delayed_list_to_pages, remote_batch_fork_orphan).
void page_thread_free_push_alone(Page* page, Block* block) noexcept;

// The delayed list (Heap::thread_delayed_free): the blocks other threads
// freed into the heap's full pages, which the owner frees into their pages.
// Frees the list's blocks; false if some block could not be freed yet
// (another thread is mid-handshake on its page: it stays on the list).
bool delayed_list_free_partial(Heap* heap) noexcept;
// The same until the list is empty (yields while a handshake runs).
void delayed_list_free_all(Heap* heap) noexcept;
// A fork() child, for the heap of a thread that did not come along (its
// pages abandoned already: segments_fork_child): the blocks of its delayed
// list go to their pages' own thread-free lists, where the thread that
// takes a page over finds them.
void delayed_list_to_pages(Heap* heap) noexcept;

// realloc in place: grows the block p of a large page (owned by the calling
// thread) to at least newsize when the slices after it are free (the page
// keeps a block size of a size class), or the block of a huge page into the
// memory past its segment's end (segment_huge_page_try_grow; to the OS
// page). false if it cannot.
bool page_try_grow_in_place(Page* page, void* p, size_t newsize) noexcept;

// An over-aligned huge block (heap_malloc_aligned_at) of `size` bytes at
// `block`, just allocated in page: its page (and segment) made to end at the
// block's end (segment_huge_page_fit), so that its usable size is its size
// (at least the large-block limit from the page start: a huge page's block
// is over it) rather than the alignment's room after it; the room before
// it decommitted. Counts the block in the huge-block gauges (huge_page_alloc
// leaves an over-aligned one to this).
// pre: the calling thread owns page.
void page_huge_fit(Page* page, const void* block, size_t size) noexcept;

// A page of a thread that did not come along into a fork() child: that
// thread stopped wherever it was, maybe in the middle of a change of the
// page's lists and count (a block popped but not counted, a collected
// thread-free list spliced in before `used` went down, `free` and
// local_free swapped half-way and sharing a tail), or of a large page's
// growth in place (the block size new, the bin old). Mended before another
// thread uses the page: its bin is its block size's, each list is cut where it leaves the page's blocks
// or reaches a block listed already, and `used` is what the lists leave
// (a block on no list stays in use: at worst a leak, never a block handed
// out twice).
void page_fork_mend(Page* page) noexcept;
// Mends the pages of a segment a fork() child abandoned so
// (Segment::fork_orphan), once: every thread that takes an abandoned
// segment over (reclaim, the abandoned purge) calls it first.
inline void segment_fork_mend(Segment* segment) noexcept {
  if (MI_LIKELY(!segment->fork_orphan)) return;
  for (size_t i = 0; i < segment->capacity; i++) {
    if (segment->pages[i].segment_in_use) page_fork_mend(&segment->pages[i]);
  }
  segment->fork_orphan = false;
}

// The bytes of a huge page's block that the huge-block gauge counts: the
// block less the decommitted room before an over-aligned one.
size_t page_huge_counted_bytes(const Page* page) noexcept;
// A huge page's block enters the huge-block gauges (allocated; an
// over-aligned one: fitted), or leaves them (freed, or its heap's pages
// destroyed).
void page_huge_stat_add(const Page* page) noexcept;
void page_huge_stat_drop(const Page* page) noexcept;

// Block start of an interior (aligned) pointer p in the page.
Block* page_ptr_unalign(const Page* page, const void* p) noexcept;

// Counts blocks in a free list (bounded by `limit`; returns limit+1 if longer).
size_t block_list_length(const Block* b, size_t limit) noexcept;

// Statistics (heap_stats.h): blocks in page->free (walks at most the
// shorter of free and local_free).
size_t page_free_count(const Page* page) noexcept;
// A page joins (reclaim) or leaves (freed without page_free) the thread: the
// blocks in its free list are counted as allocated in advance, or no more.
void page_stat_adopt(Page* page) noexcept;
void page_stat_drop(Page* page) noexcept;

}  // namespace mi
