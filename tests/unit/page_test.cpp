// Unit tests of lib/heap/page: lazy free-list extension, pages going to the
// full queue and back (local frees, and the delayed-free handshake with
// another thread), the thread-free list collected by the owner, retired
// pages kept for a while and then freed, zeroed allocation, interior
// (aligned) pointers, the direct table after a search that sent pages to the
// full queue, and invariants (page_is_valid, heap_is_valid).
//
// Most tests use a heap of their own (mi_heap_new): its page queues hold only
// the test's pages, whatever gtest allocates meanwhile.
#include "heap/page.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "arena/arena.h"
#include "common/options.h"
#include "common/stats.h"
#include "heap/free_list.h"
#include "heap/heap.h"
#include "heap/page_queue.h"
#include "heap/size_class.h"
#include "heap_util.h"
#include "os/os.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Page;
constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

using unit::fill_page;
using unit::OwnHeap;
using unit::page_of;

mi::Block* tf_block(const Page* pg) { return mi::thread_free_block(pg->xthread_free.load()); }
mi::Delayed tf_state(const Page* pg) { return static_cast<mi::Delayed>(pg->xthread_free.load() & mi::DELAYED_MASK); }

bool in_queue(const mi::PageQueue& pq, const Page* page) {
  for (const Page* p = pq.first; p != nullptr; p = p->next) {
    if (p == page) return true;
  }
  return false;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t k = 0; k < n; k++) {
    if (p[k] != 0) return false;
  }
  return true;
}

bool on_list(const mi::Block* list, const void* b) {
  for (; list != nullptr; list = mi::block_next_any(list)) {
    if (list == b) return true;
  }
  return false;
}

// The blocks an extension makes available: 4 KiB of them, at least
// MIN_EXTEND; blocks of 4 KiB or more one at a time (MIN_EXTEND in secure
// mode, which shuffles them).
size_t max_extend_of(size_t bsize) {
  if (bsize >= mi::MAX_EXTEND_SIZE) return mi::secure_enabled() ? mi::MIN_EXTEND : 1;
  return std::max(mi::MAX_EXTEND_SIZE / bsize, mi::MIN_EXTEND);
}

// --- lazy extension ------------------------------------------------------------

void check_lazy_extension(size_t size) {
  SCOPED_TRACE(size);
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  void* first = mi_heap_malloc(h.heap, size);
  ASSERT_NE(first, nullptr);
  Page* pg = page_of(first);
  const size_t bsize = pg->block_size;
  const size_t step = max_extend_of(bsize);
  EXPECT_EQ(pg->capacity, std::min<size_t>(step, pg->reserved))
      << "a fresh page makes at most 4 KiB of blocks available";
  EXPECT_LE(pg->capacity, pg->reserved);
  std::vector<void*> blocks{first};
  size_t extensions = 0;
  while (pg->used < pg->reserved) {
    const size_t cap_before = pg->capacity;
    const size_t used_before = pg->used;
    void* p = mi_heap_malloc(h.heap, size);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(page_of(p), pg) << "while the page has room, blocks come from it";
    blocks.push_back(p);
    if (pg->capacity != cap_before) {
      extensions++;
      EXPECT_EQ(used_before, cap_before) << "extended before the free list was used up";
      EXPECT_EQ(pg->capacity - cap_before, std::min(step, static_cast<size_t>(pg->reserved) - cap_before))
          << "extended by more than 4 KiB of blocks at once";
    }
    if (mi::secure_enabled()) {
      // in a random order (test PageSecure.FreshBlocksComeInARandomOrder), from the blocks made available
      const size_t off = static_cast<size_t>(static_cast<uint8_t*>(p) - pg->page_start);
      ASSERT_LT(off, pg->capacity * bsize);
      ASSERT_EQ(off % bsize, 0u);
    } else {
      // blocks are handed out in address order from fresh memory
      ASSERT_EQ(static_cast<uint8_t*>(p), pg->page_start + (pg->used - 1) * bsize);
    }
    ASSERT_TRUE(mi::page_is_valid(pg));
  }
  EXPECT_EQ(pg->capacity, pg->reserved);
  EXPECT_EQ(extensions, (pg->reserved + step - 1) / step - 1);
  for (void* p : blocks) mi_free(p);
}

TEST(PageExtend, LazyForManySizes) {
  for (size_t size : {size_t{8}, size_t{16}, size_t{64}, size_t{200}, size_t{1000}, size_t{1024}, size_t{2048},
                      size_t{5000}, size_t{16 * KiB}, size_t{40 * KiB}, size_t{128 * KiB}}) {
    check_lazy_extension(size);
    if (HasFatalFailure()) return;
  }
}

// A block of 4 KiB or more freed and asked for again comes back before the
// page makes fresh memory available: allocated and freed one by one (a
// growing buffer's steps), a page touches one block, not four.
TEST(PageExtend, LargeBlocksFreedAreReusedBeforeFreshOnes) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode makes MIN_EXTEND blocks available at once (shuffled)";
  for (size_t size : {size_t{4 * KiB}, size_t{5000}, size_t{16 * KiB}, size_t{100 * KiB}}) {
    SCOPED_TRACE(size);
    OwnHeap h;
    ASSERT_NE(h.heap, nullptr);
    void* keep = mi_heap_malloc(h.heap, size);  // keeps the page in use
    ASSERT_NE(keep, nullptr);
    Page* pg = page_of(keep);
    EXPECT_EQ(pg->capacity, 1u) << "a fresh page makes one block of this size available";
    void* first = mi_heap_malloc(h.heap, size);
    ASSERT_EQ(page_of(first), pg);
    std::memset(first, 1, size);
    for (int i = 0; i < 8; i++) {
      mi_free(first);
      void* again = mi_heap_malloc(h.heap, size);
      ASSERT_EQ(again, first) << "a fresh block was made available while the freed one waited";
      first = again;
    }
    EXPECT_EQ(pg->capacity, 2u) << "the page made blocks available that nothing used";
    mi_free(first);
    mi_free(keep);
  }
}

// --- full queue and back ----------------------------------------------------------

// A heap of its own with one full page P of 2048 B blocks (above the direct
// sizes: every allocation takes the generic path), in use as pblocks.
class PageFullOf2K : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(h.heap, nullptr);
    h.hold_none();  // (the page-queue mechanics, not the held blocks)
    pblocks = fill_page(h.heap, size, &P);
  }
  OwnHeap h;
  const size_t size = 2048;
  const size_t bin = mi::bin_of_size(size);
  Page* P = nullptr;
  std::vector<void*> pblocks;
};

TEST_F(PageFullOf2K, FullPageMovesToTheFullQueueAndBackOnLocalFree) {
  ASSERT_EQ(P->used, P->reserved);
  EXPECT_FALSE(mi::page_in_full(P)) << "full, but not yet found full by a search";
  EXPECT_TRUE(in_queue(h.heap->pages[bin], P));

  // the next allocation finds P full: P moves to the full queue, a new page Q serves it
  void* q0 = mi_heap_malloc(h.heap, size);
  ASSERT_NE(q0, nullptr);
  Page* Q = page_of(q0);
  ASSERT_NE(Q, P);
  EXPECT_TRUE(mi::page_in_full(P));
  EXPECT_TRUE(in_queue(h.heap->pages[mi::BIN_FULL], P));
  EXPECT_FALSE(in_queue(h.heap->pages[bin], P));
  EXPECT_EQ(h.heap->pages[bin].first, Q);
  EXPECT_EQ(tf_state(P), mi::Delayed::use_delayed_free) << "a full page asks other threads to tell its heap";
  EXPECT_TRUE(mi::heap_is_valid(h.heap));

  // a local free brings it back to its bin (at the end)
  void* back = pblocks[5];
  mi_free(back);
  EXPECT_FALSE(mi::page_in_full(P));
  EXPECT_TRUE(in_queue(h.heap->pages[bin], P));
  EXPECT_FALSE(in_queue(h.heap->pages[mi::BIN_FULL], P));
  EXPECT_EQ(h.heap->pages[bin].last, P);
  EXPECT_EQ(P->used, P->reserved - 1u);
  EXPECT_NE(tf_state(P), mi::Delayed::use_delayed_free);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));

  // once Q is gone, P serves again: with the freed block
  mi_free(q0);  // Q is not P's bin's only page: not kept, freed
  EXPECT_FALSE(in_queue(h.heap->pages[bin], Q));
  void* again = mi_heap_malloc(h.heap, size);
  EXPECT_EQ(again, back);
  EXPECT_EQ(P->used, P->reserved);
  pblocks[5] = again;
  for (void* p : pblocks) mi_free(p);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

// Blocks freed into older pages of the bin are reused before the page at the
// queue's front is extended into untouched memory, once they are an
// extension's worth: extending first touched up to a page more per size
// class and thread while freed blocks waited (numa-vm shape-db: rows
// replaced by rows of other sizes); fewer, and the front page is extended
// (a ring of blocks keeps being served an extension's blocks per slow call).
// A front page over memory used before is extended at once (below).
class FreedBlocksAndExtending : public PageFullOf2K {
 protected:
  // Q, the bin's new page, with every block it made available in use; its
  // memory taken as untouched or as used before (is_zero_init, which only
  // the extensions' free_is_zero reads: these tests allocate with malloc)
  void make_q(bool untouched) {
    step = max_extend_of(P->block_size);
    ASSERT_GE(pblocks.size(), 2 * step);
    qblocks.push_back(mi_heap_malloc(h.heap, size));
    Q = page_of(qblocks[0]);
    ASSERT_NE(Q, P);
    q_zero = Q->is_zero_init;
    Q->is_zero_init = untouched ? 1 : 0;
    use_up_q();
    ASSERT_LT(Q->capacity + step, Q->reserved) << "Q can still be extended twice";
    EXPECT_EQ(h.heap->pages[bin].first, Q);
  }
  void use_up_q() {
    while (Q->used < Q->capacity) qblocks.push_back(mi_heap_malloc(h.heap, size));
  }
  void TearDown() override {
    if (Q != nullptr) Q->is_zero_init = q_zero;
    for (void* p : pblocks) mi_free(p);
    for (void* p : qblocks) mi_free(p);
    EXPECT_TRUE(mi::heap_is_valid(h.heap));
  }
  size_t step = 0;
  Page* Q = nullptr;
  uint8_t q_zero = 0;
  std::vector<void*> qblocks;
};

TEST_F(FreedBlocksAndExtending, FreedBlocksOfAnotherPageComeBeforeExtendingIntoUntouchedMemory) {
  make_q(true);
  // fewer than an extension's worth freed into P: Q is extended
  for (size_t k = 0; k + 1 < step; k++) mi_free(pblocks[k]);  // P leaves the full queue, to the back
  EXPECT_EQ(h.heap->pages[bin].last, P);
  size_t q_capacity = Q->capacity;
  qblocks.push_back(mi_heap_malloc(h.heap, size));
  EXPECT_EQ(page_of(qblocks.back()), Q);
  EXPECT_EQ(Q->capacity, q_capacity + step);
  use_up_q();

  // an extension's worth: P's freed blocks serve, Q stays as it is
  mi_free(pblocks[step - 1]);
  q_capacity = Q->capacity;
  for (size_t k = 0; k < step; k++) {
    void* p = mi_heap_malloc(h.heap, size);
    EXPECT_EQ(page_of(p), P) << "a freed block of P, not a block of Q's untouched memory";
    pblocks[k] = p;
  }
  EXPECT_EQ(Q->capacity, q_capacity) << "Q extended while P had an extension's worth of free blocks";
  EXPECT_EQ(P->used, P->reserved);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

// Memory used before costs nothing more to extend into, and a run of fresh
// links serves faster than freed blocks another thread's core may hold
// (xfree_bench): the front page is extended whatever waits behind it.
TEST_F(FreedBlocksAndExtending, APageOverMemoryUsedBeforeIsExtendedAtOnce) {
  make_q(false);
  for (size_t k = 0; k < 2 * step; k++) mi_free(pblocks[k]);  // two extensions' worth in P
  EXPECT_EQ(h.heap->pages[bin].last, P);
  const size_t q_capacity = Q->capacity;
  const uint32_t p_used = P->used;
  for (size_t k = 0; k < step; k++) {
    void* p = mi_heap_malloc(h.heap, size);
    EXPECT_EQ(page_of(p), Q) << "a block of Q's extension, not a freed block of P";
    qblocks.push_back(p);
  }
  EXPECT_EQ(Q->capacity, q_capacity + step);
  EXPECT_EQ(P->used, p_used) << "P's freed blocks were taken before Q was extended";
  for (size_t k = 0; k < 2 * step; k++) pblocks[k] = mi_heap_malloc(h.heap, size);  // (P's again, once Q is used up)
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

// A small size whose pages are all in use, with only untouched memory left,
// takes a block freed into the next size up (no more than an eighth larger)
// before it touches new memory (page.cpp borrow_page); a page of that size
// still being extended lends nothing (its free blocks are fresh ones, which
// it takes itself next), nor does a size more than an eighth larger.
TEST(PageBorrow, AFreedBlockOfTheNextSizeUpServesBeforeUntouchedMemory) {
  OwnHeap h;
  h.hold_none();
  const size_t small = 576, next = 640;  // adjacent bins; 640 <= 576 + 576 / 8
  ASSERT_EQ(mi::bin_of_size(next), mi::bin_of_size(small) + 1);
  Page* lender = nullptr;
  std::vector<void*> nblocks = fill_page(h.heap, next, &lender);
  ASSERT_EQ(lender->capacity, lender->reserved);
  Page* own = nullptr;
  std::vector<void*> sblocks = fill_page(h.heap, small, &own);
  mi_free(nblocks.back());  // one freed block of the next size up
  nblocks.pop_back();

  void* p = mi_heap_malloc(h.heap, small);
  EXPECT_EQ(page_of(p), lender) << "a fresh page of its own size, while a freed block of the next size waited";
  EXPECT_EQ(mi_usable_size(p), next);
  EXPECT_EQ(lender->used, lender->reserved);
  sblocks.push_back(p);
  // none left there: its own size gets a new page
  void* q = mi_heap_malloc(h.heap, small);
  EXPECT_NE(page_of(q), lender);
  EXPECT_NE(page_of(q), own);
  EXPECT_EQ(page_of(q)->block_size, small);
  sblocks.push_back(q);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  for (void* b : sblocks) mi_free(b);
  for (void* b : nblocks) mi_free(b);
}

TEST(PageBorrow, NeitherAPageBeingExtendedNorAMuchLargerSizeLends) {
  OwnHeap h;
  h.hold_none();
  Page* own = nullptr;
  std::vector<void*> sblocks = fill_page(h.heap, 576, &own);
  // the next size's page has free blocks, but fresh ones (it is still being extended)
  void* n = mi_heap_malloc(h.heap, 640);
  Page* extending = page_of(n);
  ASSERT_LT(extending->capacity, extending->reserved);
  ASSERT_NE(extending->free, nullptr);
  const uint32_t extending_used = extending->used;
  void* p = mi_heap_malloc(h.heap, 576);
  EXPECT_EQ(page_of(p)->block_size, 576u);
  EXPECT_EQ(extending->used, extending_used) << "borrowed a fresh block of a page still being extended";
  sblocks.push_back(p);
  // 160 B is a quarter more than 128 B: never lent to it, freed block or not
  ASSERT_EQ(mi::bin_of_size(160), mi::bin_of_size(128) + 1);
  Page* larger = nullptr;
  std::vector<void*> lblocks = fill_page(h.heap, 160, &larger);
  mi_free(lblocks.back());
  lblocks.pop_back();
  Page* own128 = nullptr;
  std::vector<void*> blocks128 = fill_page(h.heap, 128, &own128);
  void* q = mi_heap_malloc(h.heap, 128);
  EXPECT_NE(page_of(q), larger);
  EXPECT_EQ(mi_usable_size(q), 128u);
  blocks128.push_back(q);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  for (void* b : sblocks) mi_free(b);
  for (void* b : lblocks) mi_free(b);
  for (void* b : blocks128) mi_free(b);
  mi_free(n);
}

// A search that sends the front page of a direct size to the full queue and
// takes the page behind it sets the direct table once, at its end
// (page_queue_find_free): the entries of the size's bin must then point at
// the new front page, not at the page now in the full queue.
TEST(PageScan, TheDirectTableFollowsTheFrontPageAfterPagesWentToTheFullQueue) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 1024;  // a direct size; its bin covers 961 .. 1024 B
  const size_t bin = mi::bin_of_size(size);
  ASSERT_LE(size, mi::SMALL_SIZE_MAX);
  Page *p1 = nullptr, *p2 = nullptr, *p3 = nullptr;
  std::vector<void*> b1 = fill_page(h.heap, size, &p1);
  std::vector<void*> b2 = fill_page(h.heap, size, &p2);
  std::vector<void*> b3 = fill_page(h.heap, size, &p3);
  ASSERT_TRUE(p1 != p2 && p2 != p3 && p1 != p3);
  EXPECT_EQ(h.heap->pages[bin].first, p3);
  EXPECT_TRUE(mi::page_in_full(p1) && mi::page_in_full(p2));
  // a block freed into each of p1 and p2: they go back to the bin, behind p3 (full, not yet found so)
  mi_free(b1.back());
  b1.pop_back();
  mi_free(b2.back());
  b2.pop_back();
  EXPECT_EQ(h.heap->pages[bin].first, p3);
  EXPECT_EQ(mi::heap_direct_page(h.heap, size), p3);

  // the next allocation finds p3 full (to the full queue) and p1's block
  void* p = mi_heap_malloc(h.heap, size - 40);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(page_of(p), p1);
  EXPECT_TRUE(mi::page_in_full(p3));
  EXPECT_EQ(h.heap->pages[bin].first, p1);
  for (size_t s = mi::bin_block_sizes[bin - 1] + 1; s <= size; s++) {
    ASSERT_EQ(mi::heap_direct_page(h.heap, s), p1) << "the direct entry of " << s << " bytes";
  }
  EXPECT_TRUE(mi::heap_is_valid(h.heap));

  // and again: p1 used up, p2's block next
  void* q = mi_heap_malloc(h.heap, size);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(page_of(q), p2);
  EXPECT_EQ(mi::heap_direct_page(h.heap, size), p2);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  mi_free(p);
  mi_free(q);
  for (auto* v : {&b1, &b2, &b3}) {
    for (void* x : *v) mi_free(x);
  }
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

TEST_F(PageFullOf2K, DelayedFreeHandshakeWithAnotherThread) {
  void* q0 = mi_heap_malloc(h.heap, size);  // P -> full queue
  ASSERT_TRUE(mi::page_in_full(P));
  ASSERT_EQ(tf_state(P), mi::Delayed::use_delayed_free);
  ASSERT_EQ(h.heap->thread_delayed_free.load(), nullptr);

  // another thread frees one block of the full page
  void* freed = pblocks[3];
  std::thread([&] { mi_free(freed); }).join();
  // the block went to the heap's delayed-free list; the page state is back to
  // no_delayed_free; the owner has not looked yet
  EXPECT_EQ(h.heap->thread_delayed_free.load(), freed);
  EXPECT_EQ(tf_state(P), mi::Delayed::no_delayed_free);
  EXPECT_EQ(tf_block(P), nullptr);
  EXPECT_TRUE(mi::page_in_full(P));
  EXPECT_EQ(P->used, P->reserved) << "not counted as free before the owner processes it";

  // the owner's next allocation processes the list: P leaves the full queue
  void* q1 = mi_heap_malloc(h.heap, size);
  ASSERT_NE(q1, nullptr);
  EXPECT_EQ(h.heap->thread_delayed_free.load(), nullptr);
  EXPECT_FALSE(mi::page_in_full(P));
  EXPECT_TRUE(in_queue(h.heap->pages[bin], P));
  EXPECT_EQ(P->used, P->reserved - 1u);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  EXPECT_TRUE(mi::page_is_valid(P));

  // and once Q is gone, P gives that block out again
  mi_free(q0);
  mi_free(q1);
  void* again = mi_heap_malloc(h.heap, size);
  EXPECT_EQ(again, freed);
  pblocks[3] = again;
  for (void* p : pblocks) mi_free(p);
}

TEST(PageFull, ManyThreadsFreeIntoAFullPage) {
  // Every block of a full page freed by other threads at once: the delayed
  // list and the thread-free list together account for all of them.
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 3000;
  Page* P = nullptr;
  std::vector<void*> pblocks = fill_page(h.heap, size, &P);
  void* q0 = mi_heap_malloc(h.heap, size);
  ASSERT_TRUE(mi::page_in_full(P));
  const size_t n = pblocks.size();
  std::vector<std::thread> ts;
  for (size_t t = 0; t < 4; t++) {
    ts.emplace_back([&, t] {
      for (size_t i = t; i < n; i += 4) mi_free(pblocks[i]);
    });
  }
  for (auto& th : ts) th.join();
  const size_t delayed = mi::block_list_length(h.heap->thread_delayed_free.load(), 1000);
  const size_t tfree = mi::block_list_length(tf_block(P), 1000);
  EXPECT_EQ(delayed + tfree, n);
  EXPECT_EQ(mi::thread_free_count(P->xthread_free.load()), tfree) << "the count kept with the list";
  EXPECT_GE(delayed, 1u) << "the first free must notify the owner";
  mi_heap_collect(h.heap, false);  // processes both: the page is empty and freed
  EXPECT_EQ(h.heap->thread_delayed_free.load(), nullptr);
  EXPECT_FALSE(in_queue(h.heap->pages[mi::BIN_FULL], P));
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  mi_free(q0);
}

// --- thread-free list -------------------------------------------------------------

TEST(PageThreadFree, CollectedByTheOwner) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  std::vector<void*> blocks;
  for (int i = 0; i < 64; i++) blocks.push_back(mi_heap_malloc(h.heap, 64));
  Page* pg = page_of(blocks[0]);
  for (void* b : blocks) ASSERT_EQ(page_of(b), pg);
  ASSERT_EQ(pg->used, 64u);
  ASSERT_FALSE(mi::page_in_full(pg));

  std::set<void*> freed;
  for (size_t i = 0; i < blocks.size(); i += 2) freed.insert(blocks[i]);
  std::thread([&] {
    for (void* b : freed) mi_free(b);
  }).join();
  // they wait on the page's thread-free list; `used` still counts them
  EXPECT_EQ(mi::block_list_length(tf_block(pg), 1000), freed.size());
  for (void* b : freed) EXPECT_TRUE(on_list(tf_block(pg), b));
  EXPECT_EQ(tf_state(pg), mi::Delayed::no_delayed_free);
  EXPECT_EQ(pg->used, 64u);
  EXPECT_EQ(h.heap->thread_delayed_free.load(), nullptr) << "a page that is not full takes cross-thread frees itself";

  // the owner collects them
  mi::page_free_collect(pg, false);
  EXPECT_EQ(tf_block(pg), nullptr);
  EXPECT_EQ(pg->used, 64u - freed.size());
  for (void* b : freed) EXPECT_TRUE(on_list(pg->free, b) || on_list(pg->local_free, b)) << b;
  EXPECT_TRUE(mi::page_is_valid(pg));
  for (size_t i = 1; i < blocks.size(); i += 2) mi_free(blocks[i]);
  EXPECT_EQ(pg->used, 0u);
}

TEST(PageThreadFree, CollectedOnTheAllocationPath) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 1500;  // generic path
  std::vector<void*> blocks;
  for (int i = 0; i < 8; i++) blocks.push_back(mi_heap_malloc(h.heap, size));
  Page* pg = page_of(blocks[0]);
  // use up the page's free list so the next allocation must collect
  while (pg->free != nullptr || pg->capacity < pg->reserved) blocks.push_back(mi_heap_malloc(h.heap, size));
  ASSERT_EQ(pg->used, pg->reserved);
  void* victim = blocks[2];
  std::thread([&] { mi_free(victim); }).join();
  ASSERT_EQ(tf_block(pg), victim);
  void* p = mi_heap_malloc(h.heap, size);
  EXPECT_EQ(p, victim) << "the owner took the block back from the thread-free list";
  EXPECT_EQ(tf_block(pg), nullptr);
  blocks[2] = p;
  for (void* b : blocks) mi_free(b);
}

// The count in the thread-free word (types.h): the freeing threads keep it,
// the owner trusts it instead of walking the list. Four threads free at once
// into one page: the count is the list's length, and the owner's collect
// takes exactly that many off `used`, in each of the three ways it takes the
// list: as local_free when `free` and local_free are empty, as local_free
// after moving local_free to `free`, and walked for its tail when both hold
// blocks.
enum class Before { both_empty, local_only, both_hold };

void thread_free_count_case(Before before) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 1500;  // above the direct sizes: 43 blocks of a 64 KiB page
  Page* pg = nullptr;
  std::vector<void*> blocks = fill_page(h.heap, size, &pg);
  ASSERT_EQ(pg->free, nullptr);
  ASSERT_GE(blocks.size(), 40u);
  std::set<void*> own;  // freed by the owner before the collect
  if (before != Before::both_empty) {
    for (size_t i = 0; i < 6; i++) own.insert(blocks[i]);
    for (void* b : own) mi_free(b);
    ASSERT_NE(pg->local_free, nullptr);
  }
  if (before == Before::both_hold) {
    mi::page_free_collect(pg, false);  // local_free to `free`
    ASSERT_NE(pg->free, nullptr);
    void* again = mi_heap_malloc(h.heap, size);  // one of `own`, freed again: to local_free
    ASSERT_TRUE(own.count(again) == 1);
    mi_free(again);
    ASSERT_NE(pg->free, nullptr);
    ASSERT_NE(pg->local_free, nullptr);
  }
  std::vector<void*> remote(blocks.begin() + 6, blocks.begin() + 38);  // 32 blocks, 8 per thread
  const uint32_t used_before = pg->used;
  std::vector<std::thread> ts;
  for (size_t t = 0; t < 4; t++) {
    ts.emplace_back([&, t] {
      for (size_t i = t; i < remote.size(); i += 4) mi_free(remote[i]);
    });
  }
  for (auto& th : ts) th.join();
  const uintptr_t tf = pg->xthread_free.load();
  EXPECT_EQ(mi::thread_free_count(tf), remote.size());
  EXPECT_EQ(mi::block_list_length(mi::thread_free_block(tf), 1000), remote.size());
  EXPECT_EQ(pg->used, used_before) << "counted in `used` until collected";
  EXPECT_TRUE(mi::page_is_valid(pg));

  mi::page_free_collect(pg, false);
  EXPECT_EQ(tf_block(pg), nullptr);
  EXPECT_EQ(mi::thread_free_count(pg->xthread_free.load()), 0u) << "the count goes with the list";
  EXPECT_EQ(pg->used, used_before - remote.size());
  EXPECT_TRUE(mi::page_is_valid(pg));
  for (void* b : remote) EXPECT_TRUE(on_list(pg->free, b) || on_list(pg->local_free, b)) << b;
  // every free block comes back once, and then the page is full again
  std::set<void*> back;
  const size_t avail = pg->reserved - pg->used;
  for (size_t i = 0; i < avail; i++) {
    void* p = mi_heap_malloc(h.heap, size);
    EXPECT_EQ(page_of(p), pg);
    EXPECT_TRUE(back.insert(p).second) << "handed out twice: " << p;
  }
  EXPECT_EQ(pg->used, pg->reserved);
  for (void* b : remote) EXPECT_EQ(back.count(b), 1u) << b;
  // and all freed by their owner, the page is empty (used went to 0, no further)
  for (void* b : blocks) {
    if (back.count(b) == 0 && own.count(b) == 0) mi_free(b);
  }
  for (void* b : back) mi_free(b);
  for (void* b : own) {
    if (back.count(b) == 0) ADD_FAILURE() << "an owner-freed block was not handed out again: " << b;
  }
}

TEST(PageThreadFree, CountTakenWhenFreeAndLocalFreeAreEmpty) { thread_free_count_case(Before::both_empty); }
TEST(PageThreadFree, CountTakenAfterLocalFreeMovesToFree) { thread_free_count_case(Before::local_only); }
TEST(PageThreadFree, CountTakenWithATailWalkWhenBothListsHoldBlocks) { thread_free_count_case(Before::both_hold); }

// A count that disagrees with its list is an invalid page (the invariants
// build checks every page so): one more, or one fewer, than the blocks.
TEST(PageThreadFree, ACountThatDisagreesWithTheListIsInvalid) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; i++) blocks.push_back(mi_heap_malloc(h.heap, 64));
  Page* pg = page_of(blocks[0]);
  std::thread([&] {
    for (int i = 0; i < 3; i++) mi_free(blocks[i]);
  }).join();
  const uintptr_t tf = pg->xthread_free.load();
  ASSERT_EQ(mi::thread_free_count(tf), 3u);
  EXPECT_TRUE(mi::page_is_valid(pg));
  pg->xthread_free.store(tf + mi::THREAD_FREE_COUNT_ONE);
  EXPECT_FALSE(mi::page_is_valid(pg));
  pg->xthread_free.store(tf - mi::THREAD_FREE_COUNT_ONE);
  EXPECT_FALSE(mi::page_is_valid(pg));
  pg->xthread_free.store(tf);
  EXPECT_TRUE(mi::page_is_valid(pg));
  for (int i = 3; i < 8; i++) mi_free(blocks[i]);
}

// --- retire --------------------------------------------------------------------------

TEST(PageRetire, OnlyPageOfABinIsKeptThenFreed) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 1100;
  const size_t bin = mi::bin_of_size(size);
  const int64_t kept0 = h.heap->tld->stats.pages_retired_kept;
  void* p = mi_heap_malloc(h.heap, size);
  Page* pg = page_of(p);
  mi_free(p);
  // kept: still in its queue, empty, with a grace period
  EXPECT_EQ(h.heap->pages[bin].first, pg);
  EXPECT_TRUE(pg->segment_in_use);
  EXPECT_EQ(pg->used, 0u);
  EXPECT_EQ(pg->retire_expire, 16u);
  EXPECT_EQ(h.heap->tld->stats.pages_retired_kept, kept0 + 1);
  // allocating again reuses it (no new page); it stays marked (its next
  // emptying need not retire it again) until a search finds it in use.
  // (Not on a 32nd slow-path call, which takes malloc_generic's search: the
  // count so far depends on the tests before this one.)
  h.heap->tld->heartbeat &= ~static_cast<decltype(h.heap->tld->heartbeat)>(31);
  void* p2 = mi_heap_malloc(h.heap, size);
  EXPECT_EQ(page_of(p2), pg);
  EXPECT_EQ(pg->retire_expire, 16u);
  const size_t bin_used = bin + 20;  // a bin this heap has not used: a search for a fresh page
  void* u = mi_heap_malloc(h.heap, mi::bin_block_sizes[bin_used]);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(pg->retire_expire, 0u) << "a search that finds the page in use unmarks it";
  mi_free(p2);
  ASSERT_EQ(pg->retire_expire, 16u) << "emptied again: retired again";
  mi_free(u);

  // Each search that needs a fresh page (here: sizes of bins this heap has
  // not used) counts down the grace period; after 16 the page is freed.
  std::vector<void*> others;
  size_t b = bin + 1;
  for (int k = 1; k <= 16; k++, b++) {
    void* o = mi_heap_malloc(h.heap, mi::bin_block_sizes[b]);
    ASSERT_NE(o, nullptr);
    others.push_back(o);
    if (k < 16) {
      ASSERT_EQ(h.heap->pages[bin].first, pg) << "freed after " << k << " searches";
      EXPECT_EQ(pg->retire_expire, 16u - k);
    } else {
      EXPECT_EQ(h.heap->pages[bin].first, nullptr) << "still kept after 16 searches";
    }
  }
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  for (void* o : others) mi_free(o);
}

TEST(PageRetire, MediumPagesAreKeptFourSearches) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 40 * KiB;
  const size_t bin = mi::bin_of_size(size);
  void* p = mi_heap_malloc(h.heap, size);
  Page* pg = page_of(p);
  mi_free(p);
  EXPECT_EQ(h.heap->pages[bin].first, pg);
  EXPECT_EQ(pg->retire_expire, 4u);
}

TEST(PageRetire, NotKeptWhenTheBinHasOtherPages) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  h.hold_none();  // (the page-queue mechanics, not the held blocks)
  const size_t size = 4000;
  const size_t bin = mi::bin_of_size(size);
  Page* P = nullptr;
  std::vector<void*> pblocks = fill_page(h.heap, size, &P);
  void* q = mi_heap_malloc(h.heap, size);  // a second page
  Page* Q = page_of(q);
  ASSERT_NE(Q, P);
  ASSERT_TRUE(mi::page_in_full(P));
  mi_free(pblocks[0]);  // P back in the bin, behind Q
  pblocks[0] = nullptr;
  ASSERT_EQ(h.heap->pages[bin].first, Q);
  ASSERT_EQ(h.heap->pages[bin].last, P);
  const int64_t pages0 = mi::stats_global.pages.current.load();
  mi_free(q);  // Q empty, but not the bin's only page: freed at once
  EXPECT_FALSE(in_queue(h.heap->pages[bin], Q));
  EXPECT_EQ(h.heap->pages[bin].first, P);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0 - 1);
  for (void* b : pblocks) mi_free(b);
}

TEST(PageRetire, CollectFreesKeptPages) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  void* p = mi_heap_malloc(h.heap, 700);
  Page* pg = page_of(p);
  const size_t bin = mi::bin_of_size(700);
  mi_free(p);
  ASSERT_EQ(h.heap->pages[bin].first, pg);
  const int64_t pages0 = mi::stats_global.pages.current.load();
  mi_heap_collect(h.heap, false);
  EXPECT_EQ(h.heap->pages[bin].first, nullptr);
  EXPECT_EQ(h.heap->page_count, 0u);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0 - 1);
  EXPECT_EQ(mi::heap_direct_page(h.heap, 700), &mi::page_empty);
}

// --- zeroed memory ------------------------------------------------------------------

TEST(PageZero, CallocOfFreshAndReusedMemoryIsZero) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  for (size_t size : {size_t{8}, size_t{24}, size_t{100}, size_t{1024}, size_t{3000}, size_t{20000}, size_t{200000},
                      size_t{3 * 1024 * KiB}}) {
    SCOPED_TRACE(size);
    // fresh
    std::vector<uint8_t*> fresh;
    for (int i = 0; i < 4; i++) {
      uint8_t* p = static_cast<uint8_t*>(mi_heap_calloc(h.heap, 1, size));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(all_zero(p, size));
      fresh.push_back(p);
    }
    // dirtied, freed, and allocated again zeroed
    for (uint8_t* p : fresh) memset(p, 0xee, mi_usable_size(p));
    for (uint8_t* p : fresh) mi_free(p);
    for (int i = 0; i < 4; i++) {
      uint8_t* p = static_cast<uint8_t*>(mi_heap_zalloc(h.heap, size));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(all_zero(p, size));
      fresh[static_cast<size_t>(i)] = p;
    }
    for (uint8_t* p : fresh) mi_free(p);
  }
}

TEST(PageZero, FreshPagesKnowTheyAreZero) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  // a size class this process has not used: a fresh page from fresh memory
  uint8_t* p = static_cast<uint8_t*>(mi_heap_calloc(h.heap, 1, 14000));
  ASSERT_NE(p, nullptr);
  Page* pg = page_of(p);
  if (pg->is_zero_init) {
    EXPECT_TRUE(pg->free_is_zero || pg->free == nullptr);
  }
  EXPECT_TRUE(all_zero(p, 14000));
  mi_free(p);
}

// --- aligned (interior) pointers -------------------------------------------------------

TEST(PageAligned, InteriorPointersAreUnaligned) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  std::vector<void*> ps;
  for (int i = 0; i < 20; i++) {
    void* p = mi_heap_malloc_aligned(h.heap, 100, 256);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
    Page* pg = page_of(p);
    mi::Block* b = mi::page_ptr_unalign(pg, p);
    EXPECT_LE(reinterpret_cast<uint8_t*>(b), static_cast<uint8_t*>(p));
    EXPECT_EQ((reinterpret_cast<uint8_t*>(b) - pg->page_start) % pg->block_size, 0u);
    EXPECT_LT(static_cast<uint8_t*>(p) - reinterpret_cast<uint8_t*>(b), static_cast<long>(pg->block_size));
    EXPECT_GE(mi_usable_size(p), 100u);
    ps.push_back(p);
  }
  Page* pg = page_of(ps[0]);
  const uint32_t used = pg->used;
  EXPECT_TRUE(mi::page_has_aligned(pg) || reinterpret_cast<uintptr_t>(pg->page_start) % 256 == 0);
  mi_free(ps[0]);
  EXPECT_EQ(pg->used, used - 1);
  for (size_t i = 1; i < ps.size(); i++) mi_free(ps[i]);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

// --- huge pages freed by another thread --------------------------------------------------

TEST(PageHuge, FreedByAnotherThreadThroughTheDelayedList) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 9 * 1024 * KiB;
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(h.heap, size));
  ASSERT_NE(p, nullptr);
  memset(p, 0x42, size);
  mi::Segment* s = mi::segmap_segment_of(p);
  Page* pg = &s->pages[0];
  EXPECT_TRUE(mi::page_in_full(pg)) << "a huge page has one block: it is full at once";
  EXPECT_TRUE(in_queue(h.heap->pages[mi::BIN_FULL], pg));
  std::thread([&] { mi_free(p); }).join();
  EXPECT_EQ(h.heap->thread_delayed_free.load(), reinterpret_cast<mi::Block*>(p));
  EXPECT_EQ(mi::segmap_segment_of(p), s) << "the owner frees the segment, not the other thread";
  mi_heap_collect(h.heap, false);
  EXPECT_EQ(mi::segmap_segment_of(p), nullptr) << "the owner's collect did not free the huge segment";
  EXPECT_EQ(h.heap->page_count, 0u);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
}

// --- large blocks growing in place (realloc) ---------------------------------------

// A heap in an exclusive arena: its large segment holds only the test's pages.
struct ArenaHeap {
  mi_heap_t* heap = nullptr;
  ArenaHeap() {
    mi_arena_id_t id = 0;
    if (mi_reserve_os_memory_ex(32u << 20, true, false, true, &id) == 0) heap = mi_heap_new_in_arena(id);
  }
  ~ArenaHeap() {
    if (heap != nullptr) {
      mi_heap_collect(heap, true);
      mi_heap_delete(heap);
    }
  }
};

uint64_t span_mask(const Page* pg) {
  return ((pg->slice_count >= 64) ? ~uint64_t{0} : ((uint64_t{1} << pg->slice_count) - 1)) << pg->segment_idx;
}

TEST(PageGrow, LargeBlockGrowsIntoFreeSlices) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  const size_t old_size = 200 * KiB, new_size = 700 * KiB;
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, old_size));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < old_size; i++) p[i] = static_cast<uint8_t>(i * 7);
  Page* pg = page_of(p);
  mi::Segment* s = mi::segmap_segment_of(p);
  ASSERT_EQ(s->page_kind, mi::PageKind::large);
  const size_t n_old = pg->slice_count;
  const size_t old_usable = mi_usable_size(p);

  uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, new_size));
  ASSERT_EQ(q, p) << "the slices after the block are free: it grows in place";
  EXPECT_EQ(pg->block_size, mi::good_block_size(new_size));
  EXPECT_EQ(mi_usable_size(p), mi::good_block_size(new_size));
  EXPECT_GT(pg->slice_count, n_old);
  const size_t offset =
      static_cast<size_t>(pg->page_start - (reinterpret_cast<uint8_t*>(s) + pg->segment_idx * mi::SMALL_PAGE_SIZE));
  EXPECT_EQ(pg->slice_count, (offset + pg->block_size + mi::SMALL_PAGE_SIZE - 1) / mi::SMALL_PAGE_SIZE);
  EXPECT_EQ(s->free_mask & span_mask(pg), 0u) << "the new slices are taken";
  for (size_t k = 1; k < pg->slice_count; k++) {
    EXPECT_EQ(s->pages[pg->segment_idx + k].slice_offset, k);
    EXPECT_EQ(mi::page_flags(&s->pages[pg->segment_idx + k]), mi::PAGE_INNER_SLICE | mi::PAGE_FREE_CHECKED)
        << "a free into a later slice takes the slow path";
    EXPECT_EQ(mi::page_owner(&s->pages[pg->segment_idx + k]), 0u);
  }
  for (size_t off = 0; off < new_size; off += 32 * KiB) EXPECT_EQ(mi::segment_page_of(s, p + off), pg) << off;
  EXPECT_EQ(pg->reserved, 1u);
  EXPECT_EQ(pg->used, 1u);
  EXPECT_TRUE(mi::segment_is_valid(s));
  EXPECT_TRUE(mi::page_is_valid(pg));
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
  EXPECT_TRUE(in_queue(a.heap->pages[mi::BIN_FULL], pg)) << "a grown page (one block, in use) is in the full queue";
  for (size_t i = 0; i < old_size; i++) ASSERT_EQ(p[i], static_cast<uint8_t>(i * 7)) << i;
  memset(p + old_usable, 0x3c, new_size - old_usable);  // the new part is usable

  // freeing gives every slice back
  mi_free(p);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
  void* again = mi_heap_malloc(a.heap, 1900 * KiB);  // needs nearly the whole segment
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(mi::segmap_segment_of(again), s) << "the grown page's slices were not all freed";
  mi_free(again);
}

TEST(PageGrow, RezallocZeroesTheGrownPart) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 150 * KiB));
  ASSERT_NE(p, nullptr);
  memset(p, 0xff, mi_usable_size(p));
  const size_t old_usable = mi_usable_size(p);
  // dirty the slices the block will grow into
  uint8_t* d = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 500 * KiB));
  ASSERT_NE(d, nullptr);
  memset(d, 0xee, 500 * KiB);
  mi_free(d);
  uint8_t* q = static_cast<uint8_t*>(mi_heap_rezalloc(a.heap, p, 600 * KiB));
  ASSERT_EQ(q, p);
  for (size_t i = 0; i < old_usable; i += 997) ASSERT_EQ(p[i], 0xff) << i;
  for (size_t i = old_usable; i < mi_usable_size(p); i++) ASSERT_EQ(p[i], 0) << i;
  mi_free(p);
}

TEST(PageGrow, MovesWhenTheNextSlicesAreTaken) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 200 * KiB));
  uint8_t* blocker = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 200 * KiB));
  ASSERT_NE(p, nullptr);
  ASSERT_NE(blocker, nullptr);
  ASSERT_EQ(page_of(blocker)->segment_idx, page_of(p)->segment_idx + page_of(p)->slice_count);
  memset(p, 0x21, 200 * KiB);
  const size_t new_size = 500 * KiB;
  uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, new_size));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  for (size_t i = 0; i < 200 * KiB; i += 101) ASSERT_EQ(q[i], 0x21) << i;
  // a growing realloc leaves an eighth of room for the next step
  EXPECT_GE(mi_usable_size(q), new_size + new_size / 8);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
  mi_free(q);
  mi_free(blocker);
}

TEST(PageGrow, OnlyTheOwnerGrowsInPlace) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 200 * KiB));
  ASSERT_NE(p, nullptr);
  Page* pg = page_of(p);
  memset(p, 0x19, 200 * KiB);
  // realloc from another thread must not touch the owner's segment: it moves
  void* moved = nullptr;
  std::thread([&] { moved = mi_realloc(p, 400 * KiB); }).join();
  ASSERT_NE(moved, nullptr);
  EXPECT_NE(moved, static_cast<void*>(p));
  EXPECT_NE(pg->block_size, mi::good_block_size(400 * KiB)) << "another thread changed the owner's page";
  for (size_t i = 0; i < 200 * KiB; i += 97) ASSERT_EQ(static_cast<uint8_t*>(moved)[i], 0x19) << i;
  mi_free(moved);
  mi_heap_collect(a.heap, false);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
}

// A buffer that realloc keeps growing, past the small sizes: its block gets
// a large page of its own there, and its next steps grow in place (the page's
// slack, then the free slices after it) instead of moving through a medium
// page of each size class (api/alloc.cpp heap_realloc_zero).
// The thread's realloc forgets the blocks it grew (a freed block's address,
// made again, would be taken for a growing buffer's).
void forget_realloc_growths() {
  for (uint32_t& slot : mi::heap_get_default()->tld->realloc_grown) slot = 0;
}

TEST(PageGrow, AGrowingBufferGetsALargePageOfItsOwnInTheMediumSizes) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  forget_realloc_growths();
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 8));
  ASSERT_NE(p, nullptr);
  size_t n = 8;
  memset(p, 0x5a, n);
  uint8_t* first_medium = nullptr;
  size_t moves_after = 0;
  while (n < 120 * KiB) {
    const size_t next = n + 1000;
    uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, next));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < n; i += 61) ASSERT_EQ(q[i], 0x5a) << n << " " << i;
    memset(q + n, 0x5a, next - n);
    if (next > mi::SMALL_OBJ_SIZE_MAX) {
      if (first_medium == nullptr) {
        first_medium = q;
        mi::Segment* s = mi::segmap_segment_of(q);
        EXPECT_EQ(s->page_kind, mi::PageKind::large) << "past the small sizes: a large page of its own";
        EXPECT_EQ(page_of(q)->page_start, q);
        EXPECT_EQ(page_of(q)->reserved, 1u) << "one block, which grows into the page";
      } else if (q != p) {
        moves_after++;
      }
    }
    p = q;
    n = next;
  }
  EXPECT_EQ(moves_after, 0u) << "from 16 to 120 KiB in 1000-byte steps, the block grows in place";
  EXPECT_EQ(p, first_medium);
  Page* pg = page_of(p);
  EXPECT_GE(pg->slice_count, 2u);
  EXPECT_EQ(pg->block_size, mi::good_block_size(n));
  EXPECT_TRUE(in_queue(a.heap->pages[mi::BIN_FULL], pg)) << "a page of one block in use is in the full queue";
  EXPECT_TRUE(mi::segment_is_valid(mi::segmap_segment_of(p)));
  EXPECT_TRUE(mi::page_is_valid(pg));
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
  mi_free(p);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
}

// A block that realloc did not grow before (allocated by malloc, resized
// once: a record updated to a new size) goes to a medium page as any block
// of its size: a page of its own would keep the rest of its slice resident
// where the slice was used before.
TEST(PageGrow, ABlockResizedOnceTakesAMediumPage) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  for (size_t from : {12 * KiB, 20 * KiB}) {
    forget_realloc_growths();
    uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, from));
    ASSERT_NE(p, nullptr);
    memset(p, 0x33, from);
    uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, from + from / 3));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < from; i += 53) ASSERT_EQ(q[i], 0x33) << i;
    EXPECT_EQ(mi::segmap_segment_of(q)->page_kind, mi::PageKind::medium) << from;
    mi_free(q);
  }
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
}

// --- huge blocks growing in place (realloc) ------------------------------------------
// A huge block's segment is sized to the block, in memory that reaches to
// the end of its arena blocks (whole SEGMENT_SIZE units): realloc grows the
// block into that memory instead of copying it.

long minor_faults() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

size_t reach_of(const mi::Segment* s) { return size_t{s->memid.block_count} * mi::ARENA_BLOCK_SIZE; }

TEST(PageGrow, HugeBlockGrowsIntoItsArenaBlock) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  const size_t old_size = 2200 * KiB;
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, old_size));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < old_size; i++) p[i] = static_cast<uint8_t>(i * 13 + 1);
  mi::Segment* s = mi::segmap_segment_of(p);
  ASSERT_EQ(s->page_kind, mi::PageKind::huge);
  ASSERT_EQ(s->memid.kind, mi::MemKind::arena);
  const size_t reach = reach_of(s);
  ASSERT_EQ(reach, mi::ARENA_BLOCK_SIZE) << "a block of 2.2 MiB takes one arena block";
  const size_t offset = static_cast<size_t>(p - reinterpret_cast<uint8_t*>(s));
  const int64_t huge_bytes0 = mi::stats_global.huge_bytes.current.load();
  const size_t old_usable = mi_usable_size(p);

  uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, 3 * MiB));
  ASSERT_NE(q, nullptr);
  if (mi::secure_enabled()) {
    // secure mode: the segment's last OS page is a guard; the block moves
    EXPECT_NE(q, p);
    for (size_t i = 0; i < old_size; i++) ASSERT_EQ(q[i], static_cast<uint8_t>(i * 13 + 1)) << i;
    mi_free(q);
    return;
  }
  ASSERT_EQ(q, p) << "the arena block reaches past the block's end: it grows in place";
  const size_t usable = mi_usable_size(p);
  EXPECT_GE(usable, 3 * MiB);
  EXPECT_EQ((offset + usable) % mi::os_page_size(), 0u);
  EXPECT_EQ(s->segment_size, offset + usable);
  EXPECT_EQ(mi::stats_global.huge_bytes.current.load() - huge_bytes0, static_cast<int64_t>(usable - old_usable));
  // the rest of the 2 MiB range the block now ends in stays protected (no THP across its end)
  if (s->tail_protected > 0) {
    EXPECT_EQ(s->segment_size + s->tail_protected, mi::align_up(s->segment_size, 2 * MiB));
  }
  for (size_t i = 0; i < old_size; i++) ASSERT_EQ(p[i], static_cast<uint8_t>(i * 13 + 1)) << i;
  memset(p + old_size, 0x5a, usable - old_size);  // the new part is usable
  EXPECT_EQ(mi::segmap_segment_of(p + usable - 1), s);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));

  // to the last byte of the arena block: still in place, with no protected tail left
  const size_t to_end = reach - offset;
  q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, to_end));
  ASSERT_EQ(q, p);
  EXPECT_EQ(mi_usable_size(p), to_end);
  EXPECT_EQ(s->segment_size, reach);
  EXPECT_EQ(s->tail_protected, 0u);
  p[to_end - 1] = 0x77;
  for (size_t i = 0; i < old_size; i += 61) ASSERT_EQ(p[i], static_cast<uint8_t>(i * 13 + 1)) << i;
  for (size_t i = old_size; i < usable; i += 61) ASSERT_EQ(p[i], 0x5a) << i;

  // one byte more: the block moves, whole
  q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, to_end + 1));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  for (size_t i = 0; i < old_size; i += 61) ASSERT_EQ(q[i], static_cast<uint8_t>(i * 13 + 1)) << i;
  for (size_t i = old_size; i < usable; i += 61) ASSERT_EQ(q[i], 0x5a) << i;
  EXPECT_EQ(q[to_end - 1], 0x77);
  mi_free(q);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
}

// A huge block that realloc moves into arena memory that a large segment
// used (committed as a whole, resident) keeps what lies past its end
// committed, and grows into it without page faults (giving it back when the
// block was allocated cost a madvise, and a fault per 4 KiB of the growth);
// a huge block malloc'd there keeps only its own memory.

// Frees a large segment over the whole of an arena block, written to (resident
// and dirty); it goes back to the arena when empty (a segment of an exclusive
// arena is not kept). Returns its address.
const mi::Segment* dirty_arena_block(mi_heap_t* heap) {
  const size_t sizes[] = {1536 * KiB, 1536 * KiB, 896 * KiB};  // 62 of its 64 slices
  uint8_t* d[3];
  for (int i = 0; i < 3; i++) {
    d[i] = static_cast<uint8_t*>(mi_heap_malloc(heap, sizes[i]));
    if (d[i] == nullptr) return nullptr;
  }
  const mi::Segment* first = mi::segmap_segment_of(d[0]);
  EXPECT_EQ(first->page_kind, mi::PageKind::large);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(mi::segmap_segment_of(d[i]), first);
    memset(d[i], 0xee, sizes[i]);
  }
  for (int i = 0; i < 3; i++) mi_free(d[i]);
  EXPECT_EQ(mi::segmap_segment_of(d[0]), nullptr) << "the empty large segment went back to the arena";
  return first;
}

TEST(PageGrow, HugeMallocInUsedMemoryKeepsOnlyItsOwn) {
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  const mi::Segment* first = dirty_arena_block(a.heap);
  ASSERT_NE(first, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 2100 * KiB));
  ASSERT_NE(p, nullptr);
  mi::Segment* s = mi::segmap_segment_of(p);
  ASSERT_EQ(s, first) << "the freed arena block is taken again";
  ASSERT_TRUE(s->memid.initially_committed);
  EXPECT_EQ(s->committed_bytes, s->segment_size) << "a malloc'd block: what lies past it is given back";
  const size_t past = mi::align_up(s->segment_size, 2 * MiB);
  EXPECT_EQ(unit::resident_pages(reinterpret_cast<uint8_t*>(s) + past, reach_of(s) - past), 0u)
      << "the rest of the arena block is not resident";
  mi_free(p);
}

TEST(PageGrow, HugeBlockGrowsIntoUsedMemoryWithoutFaults) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode: huge blocks move (their guard page)";
  ArenaHeap a;
  ASSERT_NE(a.heap, nullptr);
  // a block growing by realloc, moved from a medium page (a segment in
  // another arena block) into a huge one
  uint8_t* small = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 100 * KiB));
  ASSERT_NE(small, nullptr);
  memset(small, 0x11, 100 * KiB);
  const mi::Segment* first = dirty_arena_block(a.heap);
  ASSERT_NE(first, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_realloc(a.heap, small, 2100 * KiB));
  ASSERT_NE(p, nullptr);
  mi::Segment* s = mi::segmap_segment_of(p);
  ASSERT_EQ(s->page_kind, mi::PageKind::huge);
  ASSERT_EQ(s, first) << "the freed arena block is taken again";
  ASSERT_FALSE(s->memid.initially_zero);
  ASSERT_TRUE(s->memid.initially_committed);
  EXPECT_EQ(s->committed_bytes, reach_of(s)) << "what lies past the block stays committed";
  memset(p, 0x11, 2100 * KiB);
  const long faults0 = minor_faults();
  uint8_t* q = static_cast<uint8_t*>(mi_heap_realloc(a.heap, p, 3500 * KiB));
  ASSERT_EQ(q, p);
  memset(p + 2100 * KiB, 0x22, 1400 * KiB);
  const long faults = minor_faults() - faults0;
  EXPECT_LT(faults, 40) << "1.4 MiB grown into memory that was resident: " << faults << " page faults";
  for (size_t i = 0; i < 2100 * KiB; i += 97) ASSERT_EQ(p[i], 0x11) << i;
  mi_free(p);
  EXPECT_TRUE(mi::heap_is_valid(a.heap));
}

// --- secure mode: random free-list order -----------------------------------------------

TEST(PageChild, DISABLED_RandomOrder) {
  ASSERT_TRUE(mi::secure_enabled());
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  std::vector<uint8_t*> got;
  for (int i = 0; i < 64; i++) got.push_back(static_cast<uint8_t*>(mi_heap_malloc(h.heap, 32)));
  Page* pg = page_of(got[0]);
  size_t ascending = 0;
  std::set<uint8_t*> distinct;
  for (size_t i = 0; i < got.size(); i++) {
    ASSERT_EQ(page_of(got[i]), pg);
    ASSERT_EQ((got[i] - pg->page_start) % 32, 0);
    distinct.insert(got[i]);
    if (i > 0 && got[i] == got[i - 1] + 32) ascending++;
  }
  EXPECT_EQ(distinct.size(), got.size());
  // in address order 63 of the 63 steps go to the next block; a random
  // permutation of 128 blocks makes that step about once
  EXPECT_LT(ascending, 8u) << "the blocks come in address order";
  for (uint8_t* p : got) mi_free(p);
}

TEST(PageSecure, FreshBlocksComeInARandomOrder) {
  unit::ChildResult r = unit::run_child("PageChild.DISABLED_RandomOrder", {"MIMALLOC_SECURE=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
