// alloc.cpp: the malloc family of mimalloc.h (mi_malloc, mi_calloc,
// mi_realloc, mi_strdup, heap variants, ...), thin wrappers over
// alloc_inline.h, and reallocation.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/messages.h"
#include "../segment/segment.h"
#include "alloc_inline.h"
#include "api_internal.h"

namespace mi {

void* heap_malloc_zero(Heap* heap, size_t size, bool zero) noexcept {
  return zero ? heap_malloc<true>(heap, size) : heap_malloc<false>(heap, size);
}

void* heap_mallocn(Heap* heap, size_t count, size_t size, bool zero) noexcept {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) return alloc_impossible(count, size, 0);
  return heap_malloc_zero(heap, total, zero);
}

namespace {

// Grows block p (ours, known non-null) in place if it is a large block owned
// by this thread whose following slices are free, or a huge block owned by
// this thread whose segment's memory reaches far enough past its end.
bool realloc_grow_in_place(void* p, size_t newsize) {
  if (segmap_byte(p) < SEGMAP_FIRST_MIN) return false;
  Segment* segment = ptr_segment(p);
  if (segment->thread_id.load(std::memory_order_relaxed) != thread_id()) return false;
  return page_try_grow_in_place(segment_page_of(segment, p), p, newsize);
}

// A block this thread's realloc grew is remembered in a slot by a hash of
// its address (the last one there wins), so that its next growth knows it
// for a growing buffer's. 256 slots: realloc_bench grows 32 buffers in turn
// at random, and 12% of them missed their slot at their first medium step
// (each miss took a block in a medium page); with 64 slots 40%. A block
// freed and made again at the same address is taken for the buffer it was
// (a heuristic: it gets a page of its own).
// (A slot holds bits 3-34 of the address: blocks are 8-byte aligned, and
// two blocks a slot could take for each other lie a multiple of 32 GiB apart.)
uint32_t realloc_grown_tag(const void* p) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p) >> 3); }
uint32_t& realloc_grown_slot(Tld* tld, const void* p) {
  const uintptr_t h = (reinterpret_cast<uintptr_t>(p) >> 4) * uintptr_t{0x9E3779B97F4A7C15};
  return tld->realloc_grown[h >> (64 - 8)];
}
static_assert(REALLOC_GROWN_SLOTS == 256, "realloc_grown_slot takes 8 bits of the hash");

}  // namespace

void* heap_realloc_zero(Heap* heap, void* p, size_t newsize, bool zero) noexcept {
  if (p == nullptr) return heap_malloc_zero(heap, newsize, zero);
  size_t size = usable_size_of(p, "realloc");
  if (MI_UNLIKELY(size == 0)) {  // not ours: we cannot know how much to copy
    errno = EINVAL;
    return nullptr;
  }
  // Shrinking to no less than half, or growing within the block: in place.
  if (newsize <= size && newsize >= size / 2 && newsize > 0) return p;
  size_t alloc_size = newsize;
  // The thread's data when growing (nullptr: shrinking, or a heap not set up)
  Tld* tld = (newsize > size) ? heap->tld : nullptr;
  bool own_page = false;  // the new block gets a large page of its own (heap/page.cpp find_page)
  if (newsize > size) {
    // A block in a large page (a large block, or a medium one realloc grew:
    // below) grows in place into its page's slack and the free slices after
    // it; a huge one (a segment of its own) into the rest of the memory it
    // came in, with an eighth of room for the next steps where there is that
    // much (each growth is a system call or two: commit, the moved THP tail).
    bool grown = false;
    if (size > LARGE_OBJ_SIZE_MAX) {
      grown = (newsize <= SIZE_MAX - newsize / 8 && realloc_grow_in_place(p, newsize + newsize / 8)) ||
              realloc_grow_in_place(p, newsize);
    } else if (newsize <= LARGE_OBJ_SIZE_MAX && size > SMALL_OBJ_SIZE_MAX) {
      grown = realloc_grow_in_place(p, newsize);
    }
    if (grown) {
      if (zero) memset(static_cast<uint8_t*>(p) + size, 0, usable_size_of(p) - size);
      return p;
    }
    // Blocks that grow by realloc usually grow again (string builders, logs,
    // vectors): leave an eighth of room, so the next steps stay in place
    // (size classes are 1/4 apart: this often skips one, and saves copies).
    if (newsize <= LARGE_OBJ_SIZE_MAX) alloc_size = newsize + newsize / 8;
    // A buffer that keeps growing (a block this thread's realloc grew before)
    // into the medium sizes gets a large page of its own, whose slack and
    // following free slices its next steps grow into in place (find_page),
    // instead of a block in a medium page of each size class it passes, each
    // page kept resident to the most buffers ever at that step at once:
    // realloc_bench peak RSS 36.9 -> 33.2 MiB. Not a block resized once
    // (dbsim's records, updated to 0.5-2x their size): kept there, it would
    // hold the rest of its slice resident where the slice was used before
    // (dbsim: 104.6 -> 107.1 MiB when every medium growth had a page of its
    // own; 103.2 so; medians of 9 alternated runs).
    own_page = tld != nullptr && alloc_size > SMALL_OBJ_SIZE_MAX && alloc_size <= MEDIUM_OBJ_SIZE_MAX &&
               realloc_grown_slot(tld, p) == realloc_grown_tag(p);
  }
  // Zeroing: the new block is zero up to its usable size (a later in-place
  // growth must find zeros there too; the old block's tail past the user's
  // size is zero by the same rule). Allocated zeroed, not zeroed after: fresh
  // OS memory is zero already, and a rezalloc to 5 GiB touched all of it.
  // (a huge block that grows here may well grow again: its segment keeps
  // the memory past its end committed when that was used before, to grow
  // into without page faults; segment.cpp huge_segment_trim)
  void* newp;
  if (tld != nullptr && (own_page || alloc_size > LARGE_OBJ_SIZE_MAX)) {
    tld->segments.realloc_growing = true;  // (read by find_page and huge_keeps_tail)
    newp = malloc_generic(heap, alloc_size, zero, 0);
    tld->segments.realloc_growing = false;
  } else {
    newp = heap_malloc_zero(heap, alloc_size, zero);
  }
  if (tld != nullptr && newp != nullptr) realloc_grown_slot(tld, newp) = realloc_grown_tag(newp);
  return realloc_move(newp, p, size, newsize);
}

void* heap_reallocn(Heap* heap, void* p, size_t count, size_t size, bool zero) noexcept {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) return alloc_impossible(count, size, 0);
  return heap_realloc_zero(heap, p, total, zero);
}

void* heap_reallocf(Heap* heap, void* p, size_t newsize) noexcept {
  void* newp = heap_realloc_zero(heap, p, newsize, false);
  if (newp == nullptr && p != nullptr) free_inline(p);
  return newp;
}

void* realloc_move(void* newp, void* p, size_t size, size_t newsize) noexcept {
  if (MI_UNLIKELY(newp == nullptr)) return nullptr;  // p stays valid
  memcpy(newp, p, (size < newsize) ? size : newsize);
  free_inline(p);
  return newp;
}

char* heap_strndup_impl(Heap* heap, const char* s, size_t n) noexcept {
  if (s == nullptr) return nullptr;
  size_t len = strnlen(s, n);
  char* t = static_cast<char*>(heap_malloc<false>(heap, len + 1));
  if (t == nullptr) return nullptr;
  memcpy(t, s, len);
  t[len] = 0;
  return t;
}

char* heap_realpath_impl(Heap* heap, const char* fname, char* resolved) noexcept {
  if (resolved != nullptr) return realpath(fname, resolved);
  char buf[PATH_MAX];
  char* r = realpath(fname, buf);
  if (r == nullptr) return nullptr;
  return heap_strndup_impl(heap, buf, PATH_MAX);
}

size_t good_size(size_t size) noexcept {
  if (size <= LARGE_OBJ_SIZE_MAX) return good_block_size(size);
  if (!alloc_request_possible(size, 0)) return size;  // never a block: rounding up would wrap
  return segment_huge_usable_size(size);
}

}  // namespace mi

using namespace mi;

extern "C" {

void* mi_malloc(size_t size) mi_attr_noexcept { return heap_malloc<false>(heap_get_default(), size); }
void* mi_zalloc(size_t size) mi_attr_noexcept { return heap_malloc<true>(heap_get_default(), size); }
void* mi_calloc(size_t count, size_t size) mi_attr_noexcept {
  return heap_mallocn(heap_get_default(), count, size, true);
}
void* mi_mallocn(size_t count, size_t size) mi_attr_noexcept {
  return heap_mallocn(heap_get_default(), count, size, false);
}

void* mi_malloc_small(size_t size) mi_attr_noexcept {
  return (size <= SMALL_SIZE_MAX) ? heap_malloc_small<false>(heap_get_default(), size) : mi_malloc(size);
}
void* mi_zalloc_small(size_t size) mi_attr_noexcept {
  return (size <= SMALL_SIZE_MAX) ? heap_malloc_small<true>(heap_get_default(), size) : mi_zalloc(size);
}

void* mi_realloc(void* p, size_t newsize) mi_attr_noexcept {
  return heap_realloc_zero(heap_get_default(), p, newsize, false);
}

void* mi_reallocn(void* p, size_t count, size_t size) mi_attr_noexcept {
  return heap_reallocn(heap_get_default(), p, count, size, false);
}

void* mi_reallocf(void* p, size_t newsize) mi_attr_noexcept { return heap_reallocf(heap_get_default(), p, newsize); }

void* mi_rezalloc(void* p, size_t newsize) mi_attr_noexcept {
  return heap_realloc_zero(heap_get_default(), p, newsize, true);
}

void* mi_recalloc(void* p, size_t count, size_t size) mi_attr_noexcept {
  return heap_reallocn(heap_get_default(), p, count, size, true);
}

void* mi_expand(void* p, size_t newsize) mi_attr_noexcept {
  if (p == nullptr) return nullptr;
  return (newsize <= usable_size_of(p, "mi_expand")) ? p : nullptr;
}

char* mi_strdup(const char* s) mi_attr_noexcept { return heap_strndup_impl(heap_get_default(), s, SIZE_MAX); }
char* mi_strndup(const char* s, size_t n) mi_attr_noexcept { return heap_strndup_impl(heap_get_default(), s, n); }
char* mi_realpath(const char* fname, char* resolved_name) mi_attr_noexcept {
  return heap_realpath_impl(heap_get_default(), fname, resolved_name);
}

size_t mi_good_size(size_t size) mi_attr_noexcept { return good_size(size); }

// --- heap variants ------------------------------------------------------------
void* mi_heap_malloc(mi_heap_t* heap, size_t size) mi_attr_noexcept { return heap_malloc<false>(heap, size); }
void* mi_heap_zalloc(mi_heap_t* heap, size_t size) mi_attr_noexcept { return heap_malloc<true>(heap, size); }
void* mi_heap_calloc(mi_heap_t* heap, size_t count, size_t size) mi_attr_noexcept {
  return heap_mallocn(heap, count, size, true);
}
void* mi_heap_mallocn(mi_heap_t* heap, size_t count, size_t size) mi_attr_noexcept {
  return heap_mallocn(heap, count, size, false);
}
void* mi_heap_malloc_small(mi_heap_t* heap, size_t size) mi_attr_noexcept {
  return (size <= SMALL_SIZE_MAX) ? heap_malloc_small<false>(heap, size) : heap_malloc<false>(heap, size);
}
void* mi_heap_zalloc_small(mi_heap_t* heap, size_t size) mi_attr_noexcept {
  return (size <= SMALL_SIZE_MAX) ? heap_malloc_small<true>(heap, size) : heap_malloc<true>(heap, size);
}

void* mi_heap_realloc(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept {
  return heap_realloc_zero(heap, p, newsize, false);
}
void* mi_heap_reallocn(mi_heap_t* heap, void* p, size_t count, size_t size) mi_attr_noexcept {
  return heap_reallocn(heap, p, count, size, false);
}
void* mi_heap_reallocf(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept {
  return heap_reallocf(heap, p, newsize);
}
void* mi_heap_rezalloc(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept {
  return heap_realloc_zero(heap, p, newsize, true);
}
void* mi_heap_recalloc(mi_heap_t* heap, void* p, size_t count, size_t size) mi_attr_noexcept {
  return heap_reallocn(heap, p, count, size, true);
}

char* mi_heap_strdup(mi_heap_t* heap, const char* s) mi_attr_noexcept { return heap_strndup_impl(heap, s, SIZE_MAX); }
char* mi_heap_strndup(mi_heap_t* heap, const char* s, size_t n) mi_attr_noexcept {
  return heap_strndup_impl(heap, s, n);
}
char* mi_heap_realpath(mi_heap_t* heap, const char* fname, char* resolved_name) mi_attr_noexcept {
  return heap_realpath_impl(heap, fname, resolved_name);
}

}  // extern "C"
