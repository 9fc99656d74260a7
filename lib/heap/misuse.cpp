// misuse.cpp: see misuse.h.
#include "misuse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../segment/segment.h"
#include "free_list.h"

namespace mi {

namespace {

int errno_of(Misuse what) {
  switch (what) {
    case Misuse::double_free:
    case Misuse::listed_twice:
    case Misuse::too_many_free: return EAGAIN;  // as mimalloc reports a double free
    case Misuse::corrupt_link: return EFAULT;
    default: return EINVAL;
  }
}

// "size class 64 bytes", or "a huge block of 64.0 MiB"
const char* size_class_text(char* buf, size_t size, const Page* page) {
  if (page_is_in_use(page) && page_segment(page)->page_kind == PageKind::huge) {
    char bytes[32];
    format(buf, size, "a huge block of %s", format_bytes(bytes, sizeof(bytes), static_cast<int64_t>(page->block_size)));
  } else {
    format(buf, size, "size class %zu bytes", page->block_size);
  }
  return buf;
}

// One page's blocks marked as they are met on its lists (a small page of
// 8-byte blocks has the most: 8192). 1 KiB on the stack, on a cold path.
struct SeenBlocks {
  static constexpr size_t BITS = SMALL_PAGE_SIZE / WORD_SIZE;
  uint64_t bits[BITS / 64] = {};
  // true if block i was marked already
  bool mark(size_t i) {
    if (i >= BITS) return false;  // beyond what is tracked (cannot happen for pages of several blocks)
    const uint64_t bit = uint64_t{1} << (i % 64);
    const bool was = (bits[i / 64] & bit) != 0;
    bits[i / 64] |= bit;
    return was;
  }
};

struct Finding {
  Misuse what = Misuse::too_many_free;
  const void* p = nullptr;
  const void* other = nullptr;
};

// Walks a list marking its blocks in `seen`: the first block met a second
// time is the one freed twice; a link outside the page is corruption.
// false (and *found) if the list shows either.
bool walk_marking(const Page* page, const Block* head, SeenBlocks* seen, Finding* found) {
  const PageBlocks blocks = page_blocks(page);
  const Block* prev = nullptr;
  size_t n = 0;
  for (const Block* b = head; b != nullptr; prev = b, b = block_next(page, b)) {
    if (!blocks.has_block(b)) {
      found->what = Misuse::corrupt_link;
      found->p = prev;  // nullptr: the list's head itself (kept in the page) is bad
      found->other = b;
      return false;
    }
    if (seen->mark(static_cast<size_t>(blocks.offset(b) / page->block_size)) || ++n > page->capacity) {
      found->what = Misuse::listed_twice;
      found->p = b;
      return false;
    }
  }
  return true;
}

}  // namespace

void misuse_report(Misuse what, const char* call, const void* p, const Page* page, const void* other) noexcept {
  char sc[64];
  size_class_text(sc, sizeof(sc), page);
  const bool fatal = secure_enabled();
  const char* then = fatal ? "aborting (secure mode)" : nullptr;
  char text[MESSAGE_MAX - 64];
  switch (what) {
    case Misuse::double_free:
      format(text, sizeof(text), "%s(%p): double free: the block (%s) is free already", call, p, sc);
      if (then == nullptr) then = "the block is left alone";
      break;
    case Misuse::listed_twice:
      format(text, sizeof(text), "%s: double free: the block at %p (%s) is on its page's free list twice", call, p, sc);
      if (then == nullptr) then = "the page's free blocks are leaked, none is handed out twice";
      break;
    case Misuse::interior:
      format(text, sizeof(text), "%s(%p): not the start of a block: %zu bytes into the block at %p (%s)", call, p,
             static_cast<size_t>(static_cast<const uint8_t*>(p) - static_cast<const uint8_t*>(other)), other, sc);
      if (then == nullptr) then = "ignored";
      break;
    case Misuse::outside_blocks:
      format(text, sizeof(text), "%s(%p): not a block: outside the blocks of its page (%s, blocks at %p)", call, p, sc,
             static_cast<const void*>(page->page_start));
      if (then == nullptr) then = "ignored";
      break;
    case Misuse::page_not_in_use:
      format(text, sizeof(text),
             "%s(%p): not a block: its page holds no blocks (a double free of a large block, or a stale pointer)", call,
             p);
      if (then == nullptr) then = "ignored";
      break;
    case Misuse::corrupt_link:
      if (p != nullptr) {
        format(text, sizeof(text),
               "%s: corrupted free list: the free block at %p (%s) links to %p, not a block of its page "
               "(a write after free, or an overflow of the block before it)",
               call, p, sc, other);
      } else {
        format(text, sizeof(text), "%s: corrupted free list: its first block %p is not a block of its page (%s)", call,
               other, sc);
      }
      if (then == nullptr) then = "the page's free blocks are leaked, none is handed out";
      break;
    case Misuse::too_many_free:
      format(text, sizeof(text),
             "%s: more blocks freed than handed out in the page of blocks at %p (%s): a double free, the block "
             "freed twice not found",
             call, static_cast<const void*>(page->page_start), sc);
      if (then == nullptr) then = "the page's free blocks are leaked, none is handed out twice";
      break;
  }
  // a query (malloc_usable_size, mi_expand) answers 0 for what is not a block
  if (!fatal && strcmp(call, "free") != 0 && strcmp(call, "realloc") != 0 && strcmp(call, "malloc") != 0) {
    then = "returning 0";
  }
  if (fatal) fatal_message(errno_of(what), "%s; %s", text, then);
  error_message(errno_of(what), "%s; %s", text, then);
}

void free_list_corrupt(const Page* page, const Block* block, const Block* next) noexcept {
  misuse_report(Misuse::corrupt_link, "malloc", block, page, next);
  abort();  // secure builds only: misuse_report has aborted already
}

bool free_check(Page* page, const void* p, bool local) noexcept {
  // (an atomic read: a thread that reclaims the page's segment rewrites the
  // tag meanwhile, in use either way; ThreadSanitizer saw the plain read race)
  if (!page_is_in_use(page)) {
    misuse_report(Misuse::page_not_in_use, "free", p, page);
    return false;
  }
  const PageBlocks blocks = page_blocks(page);
  if (!blocks.contains(p)) {
    misuse_report(Misuse::outside_blocks, "free", p, page);
    return false;
  }
  const Block* block = static_cast<const Block*>(p);
  if (!blocks.has_block(p)) {
    block = reinterpret_cast<const Block*>(static_cast<const uint8_t*>(p) - blocks.offset(p) % page->block_size);
    if (!page_has_aligned(page)) {
      misuse_report(Misuse::interior, "free", p, page, block);
      return false;
    }
  }
  if (page->used == 0) {  // none of its blocks is in use (thread-free ones count as in use until collected)
    misuse_report(Misuse::double_free, "free", p, page);
    return false;
  }
#if MI_SECURE
  const Block* next = block_next(page, block);
  if (next == nullptr || blocks.contains(next)) {
    // its first word decodes to a link: look for it on the page's lists
    const size_t limit = page->capacity;
    const Block* tfree = thread_free_block(page->xthread_free.load(std::memory_order_acquire));
    if (free_list_contains(page, tfree, block, limit) ||
        (local && (free_list_contains(page, page->free, block, limit) ||
                   free_list_contains(page, page->local_free, block, limit)))) {
      misuse_report(Misuse::double_free, "free", p, page);
      return false;
    }
  }
#else
  (void)local;
#endif
  return true;
}

bool page_local_free_check(Page* page) noexcept {
  if (page->used <= page->capacity) {
    const size_t free_max = page->capacity - page->used;
    const size_t nfree = free_list_count(page, page->free, free_max);
    if (nfree != LIST_BAD && free_list_count(page, page->local_free, free_max - nfree) != LIST_BAD) return true;
  }
  SeenBlocks seen;
  Finding found;
  found.p = (page->local_free != nullptr) ? static_cast<const void*>(page->local_free) : page->free;
  if (walk_marking(page, page->free, &seen, &found)) walk_marking(page, page->local_free, &seen, &found);
  misuse_report(found.what, "malloc", found.p, page, found.other);
  // Not in secure mode: drop both lists. Their blocks count as in use from
  // now on, so the page is never freed under a block that may be live.
  page->free = nullptr;
  page->local_free = nullptr;
  page->used = page->capacity;
  page->free_is_zero = 0;
  return false;
}

void thread_free_bad(Page* page, const Block* head) noexcept {
  SeenBlocks seen;
  Finding found;
  found.p = head;
  // a bad link or a block twice on the list itself; else one of its blocks is
  // also on the owner's lists (freed by the owner and by another thread)
  if (walk_marking(page, head, &seen, &found) && walk_marking(page, page->free, &seen, &found)) {
    walk_marking(page, page->local_free, &seen, &found);
  }
  misuse_report(found.what, "malloc", found.p, page, found.other);
}

}  // namespace mi
