// test_point.h: named points inside the allocator's multi-step operations
// where a test can stop a thread (test builds only: -Dfault_injection=true,
// as tools/dev's debug build). tests/unit/fork_test.cpp forks while another
// thread stands at one, to test what a fork() child finds of a thread that
// did not come along. In other builds a test point is nothing.
#pragma once

#include <atomic>
#include <cstdint>

#include "defines.h"

namespace mi {

enum class TestPoint : uint8_t {
  segment_page_free,      // segment_page_free: the page is out of use, not yet free in its segment
  page_slices_released,   // segment_page_free: a large page's inner slices cleared, the page still in use
  delayed_freeing,        // free_block_mt: a full page's state is delayed_freeing, its block not yet passed on
  arena_purge_scheduled,  // arena_free: the blocks wait for their purge, the freeing thread still holds them
  page_fresh,             // page_fresh: the page is in use in its segment, not yet set up for its heap (page_init)
  thread_free_collected,  // page_thread_free_collect: the thread-free list is local_free, `used` not counted down yet
  large_page_grown,       // page_try_grow_in_place: a large page's block grown, its bin still the old size's
  segment_freeing,        // segment_free: the segment's last page is free, the segment still on the purge list
};

#if MI_FAULT_INJECTION
using TestPointHook = void (*)(TestPoint point);
// Called at every test point (null: none). Set by tests; not for programs.
extern MI_HIDDEN std::atomic<TestPointHook> test_point_hook;
inline void test_point(TestPoint point) noexcept {
  TestPointHook hook = test_point_hook.load(std::memory_order_acquire);
  if (hook != nullptr) hook(point);
}
#else
inline void test_point(TestPoint) noexcept {}
#endif

}  // namespace mi
