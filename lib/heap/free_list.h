// free_list.h: the links between free blocks, the test that a pointer is a
// block of its page, and the thread's random numbers.
//
// Owns: how a free block points to the next block of its list (Block::link);
// every read and write of a link goes through block_next / block_set_next.
// In the default build a link is the pointer itself: the fast paths are what
// they were (tools/fastpath-count). In the secure build (MI_SECURE) a link is
// encoded with two random keys of the page that holds the block,
//     link = rotl(next ^ keys[0], keys[1] mod 64) + keys[1],
// so that a pointer written into a freed block (a use after free) decodes to
// an address outside the page, which block_pop_next() catches before the
// address is handed out; the end of a list is not 0 either. Every list (a
// page's free, local_free and thread-free lists, a heap's delayed-free list)
// encodes a block's link with the keys of the block's own page.
// Its cost (README.md, "The hardened mode"): 96.8 instructions per free+malloc
// instead of 47.8 (tools/fastpath-count), 15% more CPU time over the
// benchmark workloads (measured before the fast paths of issue 12).
// PageBlocks tells whether a pointer is the start of a block a page has made
// available, with a multiply instead of a division (the secure build keeps
// the constants in the page; elsewhere they are computed per call).
// Thread-safety: a link is written by whoever holds the block (the owner, or
// a thread pushing it onto a thread-free or delayed list); the page fields
// read here are set by the owner before the page's first block is handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../common/sanitizer.h"
#include "../common/types.h"
#include "misuse.h"

namespace mi {

MI_ALWAYS_INLINE uintptr_t rotate_left(uintptr_t x, uintptr_t r) {
  r &= 63;
  return (x << r) | (x >> ((64 - r) & 63));
}
MI_ALWAYS_INLINE uintptr_t rotate_right(uintptr_t x, uintptr_t r) {
  r &= 63;
  return (x >> r) | (x << ((64 - r) & 63));
}

// The next block after b in its list (nullptr at the end). b is a block of `page`.
MI_ALWAYS_INLINE Block* block_next(const Page* page, const Block* b) {
#if MI_SECURE
  return reinterpret_cast<Block*>(rotate_right(b->link - page->keys[1], page->keys[1]) ^ page->keys[0]);
#else
  (void)page;
  return reinterpret_cast<Block*>(b->link);
#endif
}

MI_ALWAYS_INLINE void block_set_next(const Page* page, Block* b, const Block* next) {
#if MI_SECURE
  b->link = rotate_left(reinterpret_cast<uintptr_t>(next) ^ page->keys[0], page->keys[1]) + page->keys[1];
#else
  (void)page;
  b->link = reinterpret_cast<uintptr_t>(next);
#endif
}

// The multiplier that tests "offset is a multiple of block_size" for offsets
// below 2^32 (every offset in a segment of 4 MiB) with one multiply:
// offset * d <= d - 1 (mod 2^64) exactly when block_size divides offset, for
// d = floor((2^64 - 1) / block_size) + 1. A block of 4 GiB or more is the
// only block of its page: d = 1 accepts offset 0 alone.
constexpr uint64_t block_size_divisor(size_t block_size) {
  return (block_size < (uint64_t{1} << 32)) ? UINT64_MAX / block_size + 1 : 1;
}

// The blocks a page has made available so far (its capacity).
struct PageBlocks {
  uintptr_t start;   // page_start
  uint64_t span;     // capacity * block_size
  uint64_t divisor;  // block_size_divisor(block_size)

  MI_ALWAYS_INLINE uint64_t offset(const void* p) const { return reinterpret_cast<uintptr_t>(p) - start; }
  // p lies in the blocks (anywhere in one).
  MI_ALWAYS_INLINE bool contains(const void* p) const { return offset(p) < span; }
  // p is the start of one of the blocks.
  MI_ALWAYS_INLINE bool has_block(const void* p) const {
    const uint64_t off = offset(p);
    return off < span && off * divisor <= divisor - 1;
  }
};

MI_ALWAYS_INLINE PageBlocks page_blocks(const Page* page) {
#if MI_SECURE
  return PageBlocks{reinterpret_cast<uintptr_t>(page->page_start), page->block_span, page->block_div};
#else
  // a page of one block (large, huge): offset 0 is its only block, no division needed
  return PageBlocks{reinterpret_cast<uintptr_t>(page->page_start),
                    static_cast<uint64_t>(page->capacity) * page->block_size,
                    (page->reserved == 1) ? 1 : block_size_divisor(page->block_size)};
#endif
}

// Secure build: brings the page's block_span / block_div up to date after its
// capacity or block size changed (no-op otherwise).
MI_ALWAYS_INLINE void page_blocks_update(Page* page) {
#if MI_SECURE
  page->block_span = static_cast<uint64_t>(page->capacity) * page->block_size;
  page->block_div = block_size_divisor(page->block_size);
#else
  (void)page;
#endif
}

// Pops: the block after `block`, which is the head of page->free and is
// being handed out. The secure build checks that the link decodes to a block
// of the page or to the end of the list (else: free_list_corrupt, which
// aborts), and clears the link, so that the program never reads an encoded
// value (it would help to guess the keys).
MI_ALWAYS_INLINE Block* block_pop_next(const Page* page, Block* block) {
  Block* next = block_next(page, block);
#if MI_SECURE
  if (MI_UNLIKELY(next != nullptr && !page_blocks(page).has_block(next))) free_list_corrupt(page, block, next);
  block->link = 0;
#endif
  return next;
}

// Hands out the head of the page's free list (pre: not empty): pops it,
// counts it used and, with `zero`, clears it (a page whose free blocks are
// zero already only needs the link cleared). Inlined into the fast path,
// where `zero` is a constant, and the slow paths: one copy of the rule.
MI_ALWAYS_INLINE Block* page_free_pop(Page* page, bool zero) {
  Block* block = page->free;
  page->free = block_pop_next(page, block);
  page->used++;
  asan_block_alloc(page, block);
  if (zero) {
    if (page->free_is_zero) block->link = 0;
    else memset(block, 0, page->block_size);
  }
  return block;
}

// Pushes a block the owner thread frees onto the page's local_free list;
// the caller counts it (page->used) and retires or unfulls the page.
MI_ALWAYS_INLINE void page_local_free_push(Page* page, Block* block) {
  asan_block_free(page, block);
  block_set_next(page, block, page->local_free);
  page->local_free = block;
}

// Secure build, the free fast path: p is the start of a block of the page and
// its first word does not decode to a link (the end of a list, or an address
// in the page's blocks). A block in use had its link cleared when it was
// handed out, so a match is a block that is free already (or, with a chance
// of about 2^-40, one whose first word the program happened to set so):
// free_check() looks for it on the page's lists.
MI_ALWAYS_INLINE bool block_free_is_plain(const Page* page, const void* p) {
  const PageBlocks blocks = page_blocks(page);
  if (!blocks.has_block(p)) return false;
  const Block* next = block_next(page, static_cast<const Block*>(p));
  return next != nullptr && !blocks.contains(next);
}

// The page that holds block b (any of our blocks, by its address).
Page* block_page(const Block* b) noexcept;
// The next block of b in its list, decoded with the keys of b's own page:
// for lists whose blocks come from several pages (a heap's delayed-free list).
Block* block_next_any(const Block* b) noexcept;

// Walks the list from `head`, blocks of `page`: every block must be a block
// of the page, and there must be at most `limit` of them. Returns how many
// there are, or LIST_BAD (a link leads outside the page's blocks, or the list
// is longer than `limit`: a loop, or blocks listed twice). *tail (if given):
// the last block walked. exact=false only checks that each link lies in the
// page's blocks (two instructions a block, no division per walk).
constexpr size_t LIST_BAD = SIZE_MAX;
size_t free_list_count(const Page* page, const Block* head, size_t limit, const Block** tail = nullptr,
                       bool exact = true) noexcept;
// Whether b is on the list (walked as free_list_count does).
bool free_list_contains(const Page* page, const Block* head, const Block* b, size_t limit) noexcept;

// The next of the thread's random numbers (page keys, free-list order);
// seeded from the kernel on first use.
uint64_t tld_random(Tld* tld) noexcept;

}  // namespace mi
