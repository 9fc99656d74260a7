// remote_batch.h: a run of frees into one page of another thread's, sent to
// the page's owner in one batch.
//
// A free into a page that another live thread owns goes onto the page's
// thread-free list at once (free_block_remote), unless it follows a free of
// the same thread into the same page: then it is held (Tld::remote_out, one
// page's run, up to REMOTE_OUT_BLOCKS blocks), and the run is sent with one
// compare-and-swap onto the owner thread's Tld::remote_in list when it ends
// (a free into another page), fills, or the thread's slow path, collect or
// exit comes. The message is written into the freed blocks themselves: a
// "carrier" block holds the addresses of the blocks after it (as many as its
// size allows) and the link to the next carrier. The owner takes the whole
// list in its slow path, links each carrier's blocks itself and puts them on
// the page's local_free list at once (page_receive_blocks).
//
// Why: blocks pushed onto a thread-free list one by one carry links written
// by the freeing thread's core; the owner's mallocs then follow those links
// one cache miss at a time, in a chain (a thread that frees batches of
// another thread's blocks: xfree_bench, most of its time). Here the owner
// reads a carrier's addresses (a line holds eight) and writes the links
// itself, stores that do not wait for each other, and the mallocs that
// follow find the links in their own cache; the freeing thread makes one
// atomic operation per run instead of one per block, on a line of the
// owner's that its allocations do not use. Only runs: a free into a random
// page of another thread's gains nothing from waiting in a batch (larson, a
// producer/consumer ring of mixed sizes: 5-35% slower, the owner doing the
// freeing work that the freeing thread did before).
//
// Finding the owner: by the owner's thread id (Page::xowner, which the free
// reads anyway) in a table of live threads, once per batch. Heaps the program
// makes (mi_heap_new) are not batched into (page_is_batched): mi_heap_destroy
// frees their pages whole while a batch could hold their blocks.
// Lifetimes: a held block counts as in use in its page (Page::used), so the
// page stays. The owner may exit meanwhile: thread data is never unmapped
// (heap/thread.cpp), and an exiting thread leaves the table and closes its
// remote_in (REMOTE_IN_CLOSED), so a late batch goes block by block to the
// page's thread-free list (free_block_mt). A batch that reaches another
// thread (a new one in the same thread data, or under the same id) holds
// blocks of a page that thread does not own, which it passes on the same way.
#pragma once

#include "../common/sanitizer.h"
#include "../common/types.h"
#include "cross_cache.h"
#include "heap.h"
#include "page.h"

namespace mi {

constexpr uintptr_t REMOTE_IN_CLOSED = 1;
// Blocks larger than this are freed one by one (a batch must not hold much memory).
constexpr size_t REMOTE_BATCH_BLOCK_MAX = 16 * 1024;
// A batch is sent when it holds REMOTE_OUT_BLOCKS blocks or this many bytes.
constexpr size_t REMOTE_BATCH_BYTES_MAX = 256 * 1024;
// Fewer blocks are freed one by one (a message for a few is not worth it).
constexpr size_t REMOTE_BATCH_MIN = 4;

// RemoteOut::limit before the run's second free sets it (remote_free's test,
// n + 1 < limit, fails on it: a lone free costs no test of the page).
constexpr uint32_t REMOTE_LIMIT_UNKNOWN = 1;

// remote_free's other cases: a thread with no heap yet, a free that ends or
// starts a run, a block that fills the batch.
void remote_free_other(Page* page, Block* block, uintptr_t owner) noexcept;

// A free of `block` into `page`, owned by thread `owner` (not the caller),
// by a thread with a heap (tld its data): held for a batch, or pushed onto
// the page's thread-free list. The two common cases inline: the run goes on
// (the block is held), and a lone free with no run held (larson: a call less
// per remote free).
MI_ALWAYS_INLINE void remote_free_run(Tld* tld, Page* page, Block* block, uintptr_t owner) noexcept {
  RemoteOut* out = &tld->remote_out;
  if (out->page == page && out->owner == owner) {
    if (MI_LIKELY(out->n + 1 < out->limit)) {
      asan_block_free(page, block);
      out->blocks[out->n++] = block;
      return;
    }
  } else if (out->n == 0) {
    out->page = page;
    out->owner = owner;
    out->limit = REMOTE_LIMIT_UNKNOWN;
    free_block_remote(page, block);
    return;
  }
  remote_free_other(page, block, owner);
}

// A free of `block` into `page`, owned by thread `owner` (not the caller):
// kept by the calling thread for its own allocations (heap/cross_cache.h),
// or remote_free_run. Inline in free_not_fast, with no call but tail calls
// (a call would make every remote free save and restore registers).
MI_ALWAYS_INLINE void remote_free(Page* page, Block* block, uintptr_t owner) noexcept {
  Tld* tld = heap_get_default()->tld;  // (null: a thread with no heap yet)
  if (MI_UNLIKELY(tld == nullptr)) {
    remote_free_other(page, block, owner);
    return;
  }
  switch (cross_cache_push(tld, page, block)) {
    case CrossPush::kept:
      // (the line of xowner, read already)
      if (MI_UNLIKELY(thread_free_count(page->xthread_free.load(std::memory_order_relaxed)) >= CROSS_STEAL_MIN)) {
        cross_cache_steal(tld, page);
      }
      return;
    case CrossPush::full: cross_cache_passed(tld, page, block, owner); return;
    case CrossPush::no: break;
  }
  remote_free_run(tld, page, block, owner);
}

// The calling thread's held frees, sent now (its slow path now and then,
// collect, exit).
void remote_batch_send_all(Tld* tld) noexcept;

// The batches other threads sent to the calling thread (tld its own): every
// block freed into its page.
void remote_batch_receive(Tld* tld) noexcept;

// A thread starts: batches may be sent to it.
void remote_batch_open(Tld* tld) noexcept;
// The thread exits: its held frees are sent, it takes no more batches, and
// frees the blocks of those that came.
void remote_batch_close(Tld* tld) noexcept;

// A fork() child, for a thread that did not come along: the batches sent to
// it go to their pages' thread-free lists (its segments are abandoned), and
// it takes no more.
void remote_batch_fork_orphan(Tld* tld) noexcept;

MI_ALWAYS_INLINE bool remote_batch_waiting(const Tld* tld) {
  return tld->remote_in.load(std::memory_order_relaxed) > REMOTE_IN_CLOSED;
}

}  // namespace mi
