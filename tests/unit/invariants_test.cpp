// Unit tests of the invariant walkers (common/check.h, arena/arena_check.cpp,
// segment_is_valid, heap/heap_check.cpp): each one passes on the real
// structures, and fails, saying why, when one rule is broken on purpose in a
// real structure (restored at once): a bit past an arena's last block, a
// purge pending on a block a segment holds, a node out of range, a segment's
// used count, a page linked into two queues, a direct-table entry, the first line's copy of
// the block size, a free list that loops. In the invariant build (-Dinvariants=true: build-debug)
// also that the walkers run where corruption would show first: a claim in
// a corrupted arena aborts there, naming the broken rule.
//
// The structures broken here live in an exclusive arena of the test's own,
// used by one heap of the test's thread: no other allocation (gtest's) and
// no other thread touches them meanwhile.
#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstring>
#include <string>

#include "arena/arena.h"
#include "arena/arena_internal.h"
#include "heap/free_list.h"
#include "heap/heap.h"
#include "heap/heap_check.h"
#include "heap/page.h"
#include "heap/page_queue.h"
#include "segment/segment.h"

namespace {

// An exclusive arena of 16 blocks (64 MiB: 48 bits of its one bitmap field
// lie past its last block) and a heap that allocates from it alone.
struct OwnArena {
  mi_arena_id_t id = 0;
  mi::Arena* arena = nullptr;
  mi_heap_t* heap = nullptr;
  void* block = nullptr;  // a small block of the heap
  mi::Segment* segment = nullptr;

  OwnArena() {
    if (mi_reserve_os_memory_ex(16 * mi::ARENA_BLOCK_SIZE, true, false, true, &id) != 0) return;
    arena = mi::arena_at(static_cast<size_t>(id - 1));
    heap = mi_heap_new_in_arena(id);
    if (heap == nullptr) return;
    block = mi_heap_malloc(heap, 48);
    if (block != nullptr) segment = mi::ptr_segment(block);
  }
  ~OwnArena() {
    if (block != nullptr) mi_free(block);
    if (heap != nullptr) mi_heap_delete(heap);
  }
  bool ready() const { return arena != nullptr && segment != nullptr; }
};

// The first block of the arena that no segment holds.
size_t first_free_block(const mi::Arena* a) {
  for (size_t i = 0; i < a->block_count; i++) {
    if (!mi::bitmap_is_any_set(a->blocks_inuse, a->field_count, i, 1)) return i;
  }
  return SIZE_MAX;
}

bool contains(const mi::Invalid& why, const char* part) { return std::strstr(why.text, part) != nullptr; }

TEST(Invariants, HoldOnTheRealStructures) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  mi::Invalid why{};
  EXPECT_TRUE(mi::arena_is_valid(own.arena, true, &why)) << why.text;
  EXPECT_TRUE(mi::arenas_are_valid(true, &why)) << why.text;
  EXPECT_TRUE(mi::arena_memory_is_held(own.segment, own.segment->memid, &why)) << why.text;
  EXPECT_TRUE(mi::segment_is_valid(own.segment, &why)) << why.text;
  EXPECT_TRUE(mi::heap_is_valid(own.heap, &why)) << why.text;
  EXPECT_TRUE(mi::process_is_valid(true, &why)) << why.text;
}

TEST(Invariants, ArenaBitPastItsLastBlock) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  ASSERT_EQ(own.arena->block_count, 16u);
  mi::Invalid why{};
  // a bit past the last block cleared in `inuse`: a claim could hand out memory the arena does not have
  mi::bitmap_unclaim(own.arena->blocks_inuse, own.arena->field_count, 40, 1);
  EXPECT_FALSE(mi::arena_is_valid(own.arena, false, &why));
  EXPECT_TRUE(contains(why, "past its 16 blocks is clear in the in-use bitmap")) << why.text;
  EXPECT_FALSE(mi::process_is_valid(true, &why));
  mi::bitmap_claim(own.arena->blocks_inuse, own.arena->field_count, 40, 1, nullptr);
  // ... and set in `dirty`
  mi::bitmap_claim(own.arena->blocks_dirty, own.arena->field_count, 20, 1, nullptr);
  EXPECT_FALSE(mi::arena_is_valid(own.arena, false, &why));
  EXPECT_TRUE(contains(why, "is set in the dirty bitmap")) << why.text;
  mi::bitmap_unclaim(own.arena->blocks_dirty, own.arena->field_count, 20, 1);
  EXPECT_TRUE(mi::arena_is_valid(own.arena, true, &why)) << why.text;
}

TEST(Invariants, ArenaPurgePendingOnAHeldBlock) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  ASSERT_NE(own.arena->blocks_purge, nullptr);
  const size_t idx = own.segment->memid.block_index;
  mi::Invalid why{};
  // the purge would drop the memory of a live segment
  mi::bitmap_claim(own.arena->blocks_purge, own.arena->field_count, idx, 1, nullptr);
  EXPECT_FALSE(mi::arena_memory_is_held(own.segment, own.segment->memid, &why));
  EXPECT_TRUE(contains(why, "waits for a purge while in use")) << why.text;
  EXPECT_FALSE(mi::segment_is_valid(own.segment, &why));
  EXPECT_FALSE(mi::process_is_valid(true, &why));
  EXPECT_TRUE(contains(why, "waits for a purge while in use")) << why.text;
  mi::bitmap_unclaim(own.arena->blocks_purge, own.arena->field_count, idx, 1);
  EXPECT_TRUE(mi::process_is_valid(true, &why)) << why.text;
}

TEST(Invariants, ArenaPurgePendingOnABlockNeverHandedOut) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  const size_t idx = first_free_block(own.arena);
  ASSERT_LT(idx, own.arena->block_count);
  // (a fresh arena from the OS: its free blocks are known zero, not dirty)
  ASSERT_FALSE(mi::bitmap_is_any_set(own.arena->blocks_dirty, own.arena->field_count, idx, 1));
  mi::Invalid why{};
  mi::bitmap_claim(own.arena->blocks_purge, own.arena->field_count, idx, 1, nullptr);
  EXPECT_FALSE(mi::arena_is_valid(own.arena, true, &why));
  EXPECT_TRUE(contains(why, "never handed out")) << why.text;
  // not checked while others may claim and free (a claim and a free between the two loads would look the same)
  EXPECT_TRUE(mi::arena_is_valid(own.arena, false, &why)) << why.text;
  mi::bitmap_unclaim(own.arena->blocks_purge, own.arena->field_count, idx, 1);
}

TEST(Invariants, ArenaNodeOutOfRange) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  mi::Invalid why{};
  const int node = own.arena->numa_node;
  own.arena->numa_node = 70;  // beyond NUMA_MAX_NODES; the account still says unbound
  EXPECT_FALSE(mi::arena_is_valid(own.arena, false, &why));
  EXPECT_TRUE(contains(why, "node 70 is not one of the topology's")) << why.text;
  own.arena->numa_node = node;
  const int account = own.arena->account;
  own.arena->account = mi::ACCOUNT_OS;
  EXPECT_FALSE(mi::arena_is_valid(own.arena, false, &why));
  EXPECT_TRUE(contains(why, "account")) << why.text;
  own.arena->account = account;
  EXPECT_TRUE(mi::arena_is_valid(own.arena, false, &why)) << why.text;
}

TEST(Invariants, SegmentUsedCount) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  mi::Invalid why{};
  own.segment->used++;
  EXPECT_FALSE(mi::segment_is_valid(own.segment, &why));
  EXPECT_TRUE(contains(why, "pages in use, but used says")) << why.text;
  EXPECT_FALSE(mi::process_is_valid(true, &why));
  own.segment->used--;
  // a page in use marked free as well
  const mi::Page* page = mi::segment_page_of(own.segment, own.block);
  const uint64_t bit = uint64_t{1} << page->segment_idx;
  own.segment->free_mask |= bit;
  EXPECT_FALSE(mi::segment_is_valid(own.segment, &why));
  EXPECT_TRUE(contains(why, "is not the complement")) << why.text;
  own.segment->free_mask &= ~bit;
  EXPECT_TRUE(mi::segment_is_valid(own.segment, &why)) << why.text;
}

TEST(Invariants, SegmentFreeQueue) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  ASSERT_TRUE(own.segment->in_free_queue);  // one page of 64 in use
  mi::Invalid why{};
  mi::SegmentsTld* tld = &mi::heap_get_default()->tld->segments;
  ASSERT_EQ(own.heap->tld, mi::heap_get_default()->tld);
  // the queue's last segment forgotten: a push would link after the wrong one
  mi::Segment* last = tld->small_free.last;
  ASSERT_NE(last, nullptr);
  tld->small_free.last = last->prev;
  EXPECT_FALSE(mi::segments_tld_is_valid(tld, &why));
  EXPECT_TRUE(contains(why, "last is not its last segment")) << why.text;
  tld->small_free.last = last;
  // a segment with free pages that thinks it is in no queue
  own.segment->in_free_queue = false;
  EXPECT_FALSE(mi::segment_is_valid(own.segment, &why));
  EXPECT_TRUE(contains(why, "not in a free queue")) << why.text;
  own.segment->in_free_queue = true;
  EXPECT_TRUE(mi::segments_tld_is_valid(tld, &why)) << why.text;
}

TEST(Invariants, PageInTwoQueues) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  void* other = mi_heap_malloc(own.heap, 200);  // another bin's page, alone in its queue
  ASSERT_NE(other, nullptr);
  mi::Page* a = mi::segment_page_of(own.segment, own.block);
  mi::Page* b = mi::segment_page_of(mi::ptr_segment(other), other);
  ASSERT_NE(a, b);
  mi::PageQueue* qb = mi::heap_page_queue_of(own.heap, b);
  ASSERT_EQ(qb->last, b);
  mi::Invalid why{};
  b->next = a;  // a, first of its own queue, now reached from b's queue too
  EXPECT_FALSE(mi::heap_is_valid(own.heap, &why));
  EXPECT_TRUE(std::strstr(why.text, "but its prev is") != nullptr || contains(why, "ends at")) << why.text;
  EXPECT_FALSE(mi::page_queue_is_valid(own.heap, qb, nullptr, &why));
  b->next = nullptr;
  // the count of pages off by one
  own.heap->page_count++;
  EXPECT_FALSE(mi::heap_is_valid(own.heap, &why));
  EXPECT_TRUE(contains(why, "page_count says")) << why.text;
  own.heap->page_count--;
  // the direct page of a small bin not its queue's first page
  const size_t abin = a->bin;
  mi::Page* saved = own.heap->direct_page[abin];
  own.heap->direct_page[abin] = &mi::page_empty;
  EXPECT_FALSE(mi::heap_is_valid(own.heap, &why));
  EXPECT_TRUE(contains(why, "the direct page of bin")) << why.text;
  own.heap->direct_page[abin] = saved;
  // a direct size mapped to another bin
  own.heap->direct_bin[a->block_size] ^= 1;
  EXPECT_FALSE(mi::heap_is_valid(own.heap, &why));
  EXPECT_TRUE(contains(why, "the direct bin of")) << why.text;
  own.heap->direct_bin[a->block_size] ^= 1;
  // the copy of the block size on the entry's first line (the small
  // allocation slow path's) is the page's block size
  EXPECT_EQ(a->small_block_size, a->block_size);
  a->small_block_size += 8;
  EXPECT_FALSE(mi::heap_is_valid(own.heap, &why));
  EXPECT_TRUE(contains(why, "on its first line")) << why.text;
  a->small_block_size -= 8;
  EXPECT_TRUE(mi::heap_is_valid(own.heap, &why)) << why.text;
  mi_free(other);
}

TEST(Invariants, PageFreeListLoops) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  mi::Page* page = mi::segment_page_of(own.segment, own.block);
  mi::Invalid why{};
  EXPECT_TRUE(mi::page_is_valid(page, &why)) << why.text;
  // the live block made a local free list that leads back to itself
  mi::Block* saved = page->local_free;
  mi::Block* b = static_cast<mi::Block*>(own.block);
  const uintptr_t link = b->link;
  mi::block_set_next(page, b, b);
  page->local_free = b;
  EXPECT_FALSE(mi::page_is_valid(page, &why));
  EXPECT_TRUE(contains(why, "longer than its")) << why.text;
  // ... or out of the page
  mi::block_set_next(page, b, reinterpret_cast<mi::Block*>(page->page_start + 1));
  EXPECT_FALSE(mi::page_is_valid(page, &why));
  EXPECT_TRUE(contains(why, "not a block of the page")) << why.text;
  page->local_free = saved;
  b->link = link;
  EXPECT_TRUE(mi::page_is_valid(page, &why)) << why.text;
}

#if MI_INVARIANTS
// The program's view (tests/stress call it between rounds).
TEST(Invariants, TestHookReportsTheReason) {
  OwnArena own;
  ASSERT_TRUE(own.ready());
  char why[24];  // shorter than any reason
  EXPECT_TRUE(mi_debug_check_invariants(true, why, sizeof(why))) << why;
  own.segment->used++;
  EXPECT_FALSE(mi_debug_check_invariants(true, why, sizeof(why)));
  EXPECT_EQ(std::strlen(why), sizeof(why) - 1);  // cut to the buffer, NUL-terminated
  EXPECT_EQ(std::string(why).rfind("segment ", 0), 0u) << why;
  own.segment->used--;
}

// Where corruption shows first: a claim in an arena whose bitmap lost a bit
// past its end aborts there, naming the broken rule.
TEST(InvariantsDeathTest, ArenaClaimChecksTheArena) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        OwnArena own;
        if (!own.ready()) _exit(3);
        mi::bitmap_unclaim(own.arena->blocks_inuse, own.arena->field_count, 40, 1);
        mi::MemId memid;
        void* p = mi::arena_alloc(mi::ARENA_BLOCK_SIZE, mi::ARENA_BLOCK_SIZE, true, false, own.id, -1, &memid);
        if (p != nullptr) mi::arena_free(p, mi::ARENA_BLOCK_SIZE, mi::ARENA_BLOCK_SIZE, memid);
        _exit(0);
      },
      "invariant broken: arena [0-9]+: a bit past its 16 blocks is clear in the in-use bitmap");
}
#endif

}  // namespace
