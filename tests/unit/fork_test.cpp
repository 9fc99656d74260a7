// Unit tests of fork() while another thread stands in the middle of an
// allocator operation (lib/heap/thread.cpp fork_child, lib/segment/segment.cpp
// segments_fork_child). A fork() child has only the forking thread; the
// others stop wherever they were. These tests stop a thread at a test point
// (lib/common/test_point.h: builds with -Dfault_injection=true, as tools/dev's
// debug build; skipped in others) and fork there, which tests/stress/fork_stress
// reaches only by chance (about 2 runs in 100 failed in the debug build).
//
// Threads are raw pthreads: std::thread would allocate its state.
#include <gtest/gtest.h>
#include <mimalloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "common/test_point.h"
#include "heap/heap.h"
#include "heap/page.h"
#include "segment/abandon.h"
#include "segment/segment.h"

namespace {

#if MI_FAULT_INJECTION

// The thread to stop, the point to stop it at, and the hand-shake.
std::atomic<uintptr_t> stop_thread{0};
std::atomic<int> stop_point{-1};
std::atomic<bool> stopped{false};
std::atomic<bool> go_on{false};

void stop_hook(mi::TestPoint point) {
  if (static_cast<int>(point) != stop_point.load() || mi::thread_id() != stop_thread.load()) return;
  stopped.store(true);
  while (!go_on.load()) sched_yield();
}

struct Hook {
  explicit Hook(mi::TestPoint point) {
    stop_point.store(static_cast<int>(point));
    stopped.store(false);
    go_on.store(false);
    mi::test_point_hook.store(&stop_hook);
  }
  ~Hook() {
    go_on.store(true);
    mi::test_point_hook.store(nullptr);
    stop_thread.store(0);
  }
};

void wait_stopped() {
  while (!stopped.load()) sched_yield();
}

// Forks; the child runs `child` (its exit status: 0 = pass, else the number
// of the check that failed) under a 20 s alarm (a hang fails as SIGALRM).
template <class F>
int fork_and_wait(F child) {
  const pid_t pid = fork();
  if (pid == 0) {
    // (a new thread of the child may get the stopped thread's id: it must not stop)
    go_on.store(true);
    alarm(20);
    _exit(child());
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// A thread that stops, in segment_page_free, between taking a large page out
// of use and marking it free in its segment (the lock there may be a purge's
// for a while: where fork_stress's children found it). Its other page keeps
// the segment. The child must find the segment whole and abandoned, not
// still the vanished thread's with a page that is neither in use nor free
// (it was: a child that freed a page of it failed segment_is_valid, and the
// segment stayed tied to a thread id that the child's next thread reuses).
struct HalfFreed {
  void* keep = nullptr;
  void* freed = nullptr;
};

void* half_free_thread(void* arg) {
  auto* h = static_cast<HalfFreed*>(arg);
  h->freed = mi_malloc(1 << 20);  // a large page each, in one large segment
  h->keep = mi_malloc(1 << 20);
  memset(h->keep, 0x5a, 1 << 20);
  stop_thread.store(mi::thread_id());
  mi_free(h->freed);  // stops at TestPoint::segment_page_free
  return nullptr;
}

TEST(ForkChild, PageHalfFreedByAThreadThatDidNotComeAlong) {
  Hook hook(mi::TestPoint::segment_page_free);
  HalfFreed h;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, &half_free_thread, &h), 0);
  wait_stopped();
  mi::Segment* s = mi::ptr_segment(h.keep);
  ASSERT_EQ(mi::ptr_segment(h.freed), s) << "both pages in one segment (the test's premise)";
  const int status = fork_and_wait([&]() -> int {
    if (s->thread_id.load() != 0) return 1;  // still the vanished thread's
    if (!mi::segment_is_valid(s)) return 2;  // used, free_mask and the pages in use disagree
    if (s->used != 1 || s->abandoned != 1) return 3;
    if (!mi::abandoned_contains(s)) return 4;
    // its block is freed and its memory reused, in this thread and in a new one
    const unsigned char* k = static_cast<const unsigned char*>(h.keep);
    for (size_t i = 0; i < (1 << 20); i += 4096) {
      if (k[i] != 0x5a) return 5;
    }
    mi_free(h.keep);
    mi_collect(true);
    void* again = mi_malloc(1 << 20);
    if (again == nullptr) return 6;
    memset(again, 1, 1 << 20);
    mi_free(again);
    pthread_t c;
    if (pthread_create(
            &c, nullptr,
            [](void*) -> void* {
              for (int i = 0; i < 64; i++) mi_free(mi_malloc(static_cast<size_t>(1) << (10 + i % 11)));
              return nullptr;
            },
            nullptr) != 0 ||
        pthread_join(c, nullptr) != 0) {
      return 7;
    }
    return 0;
  });
  EXPECT_EQ(status, 0) << "the child's check " << status << " failed (1000+N: killed by signal N)";
  go_on.store(true);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  mi_free(h.keep);
}

// A thread that stops in the middle of a cross-thread free into a full page
// of the forking thread: the page's state is delayed_freeing, which only that
// thread would leave. The child's own frees into that page waited for it for
// ever (the child hung: one of fork_stress's failures).
struct Full {
  void* blocks[4096];
  size_t n = 0;
  void* remote = nullptr;
};

void* remote_free_thread(void* arg) {
  auto* f = static_cast<Full*>(arg);
  stop_thread.store(mi::thread_id());
  mi_free(f->remote);  // stops at TestPoint::delayed_freeing
  return nullptr;
}

TEST(ForkChild, CrossThreadFreeStoppedHalfWay) {
  Full f;
  // fill pages of one size class: the first ones go to the full queue
  for (; f.n < 4096; f.n++) f.blocks[f.n] = mi_malloc(1024);
  mi_free(mi_malloc(1024));  // (a page found full moves to the full queue on the next search)
  mi::Page* page = mi::segment_page_of(mi::ptr_segment(f.blocks[0]), f.blocks[0]);
  ASSERT_TRUE(mi::page_in_full(page)) << "the first page of 4096 blocks of 1 KiB is full (the test's premise)";
  f.remote = f.blocks[0];
  {
    Hook hook(mi::TestPoint::delayed_freeing);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, nullptr, &remote_free_thread, &f), 0);
    wait_stopped();
    const int status = fork_and_wait([&]() -> int {
      // this thread frees into the page and collects: nothing may wait for the vanished thread
      for (size_t i = 1; i < f.n; i++) mi_free(f.blocks[i]);
      mi_collect(true);
      void* p = mi_malloc(1024);
      if (p == nullptr) return 1;
      mi_free(p);
      return 0;
    });
    EXPECT_EQ(status, 0) << "the child's check " << status << " failed (1000+N: killed by signal N; 1014: hung)";
    go_on.store(true);
    ASSERT_EQ(pthread_join(t, nullptr), 0);
  }
  for (size_t i = 1; i < f.n; i++) mi_free(f.blocks[i]);
}

#else

TEST(ForkChild, PageHalfFreedByAThreadThatDidNotComeAlong) {
  GTEST_SKIP() << "needs the test points of a -Dfault_injection=true build (tools/dev's debug build)";
}

TEST(ForkChild, CrossThreadFreeStoppedHalfWay) {
  GTEST_SKIP() << "needs the test points of a -Dfault_injection=true build (tools/dev's debug build)";
}

#endif

}  // namespace
