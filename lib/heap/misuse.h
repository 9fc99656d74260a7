// misuse.h: misuse of the heap that the allocator detects, and what follows.
//
// Owns: the one message of each detection (the call, the pointer, the size
// class of its page and what was wrong) and what happens after it: in secure
// mode (the secure build, or the secure option: common/options.h) the
// process aborts; otherwise the message is an error (show_errors,
// max_errors; a mi_register_error callback gets the errno value) and the
// caller leaves the memory alone: a bad free is ignored, a corrupted or
// doubled free list is dropped (its blocks leak; none is handed out twice).
// Also the slow-path checks that find misuse: of a pointer about to be freed
// (free_check), of a page's local free list about to be reused
// (page_local_free_check), of a thread-free list just taken (thread_free_bad).
// What each build detects, and where: README.md, "The hardened mode".
// Thread-safety: free_check with local=false may run in any thread and reads
// only the page's thread-free list; the rest is the owner's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/types.h"

namespace mi {

enum class Misuse : uint8_t {
  double_free,      // the block is free already (found when it is freed again)
  listed_twice,     // a free list holds the block twice (a double free, found later)
  interior,         // not the start of a block: inside one
  outside_blocks,   // outside the blocks of its page (its header, its tail, past the last block)
  page_not_in_use,  // in a page that holds no blocks
  corrupt_link,     // a free block's link leads outside its page (a write after free, an overflow)
  too_many_free,    // the page has more blocks free than it made (a double free, found later)
};

// Reports one detected misuse. `call`: the function the program called
// ("free", "malloc_usable_size", "malloc" for a list found bad while
// allocating); `p`: the pointer concerned; `other`: the block that holds p
// (interior), or the bad link's target (corrupt_link). Aborts in secure mode.
void misuse_report(Misuse what, const char* call, const void* p, const Page* page,
                   const void* other = nullptr) noexcept;

// A popped link that decodes outside its page (free_list.h, secure build).
[[noreturn]] void free_list_corrupt(const Page* page, const Block* block, const Block* next) noexcept;

// The slow path's check of a pointer about to be freed (api/free.cpp): its
// page is in use, it lies in the page's blocks, and it is a block start (or
// any pointer into a block of a page with aligned blocks). The secure build
// also looks for it on the page's free lists when its first word looks like
// a link (all lists when `local`, the caller owning the page; else the
// thread-free list). true: free it; false: reported, leave it alone.
bool free_check(Page* page, const void* p, bool local) noexcept;

// Before page->local_free is reused (page_free_collect), when the cheap test
// there failed or in secure mode: checks the local_free and free lists (every
// link a block of the page; no more blocks than the page has free). false:
// misuse reported (secure mode aborted); the two lists were dropped and their
// blocks counted as used, so that none is handed out again.
bool page_local_free_check(Page* page) noexcept;

// A thread-free list just taken from the page that does not fit it (a link
// outside the page's blocks, or more blocks than are in use): reports what is
// wrong (secure mode aborts). The caller leaks the list.
void thread_free_bad(Page* page, const Block* head) noexcept;

}  // namespace mi
