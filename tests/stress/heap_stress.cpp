/* heap_stress -- first-class heaps (mi_heap_new/delete/destroy) under many threads.

   What it checks:
     Every thread runs many heap lifetimes.  In each, it creates a heap with
     mi_heap_new, allocates blocks in it through the mi_heap_* entry points
     (malloc, zalloc, calloc, mallocn, malloc_aligned, realloc, and plain
     mi_malloc with the heap set as the thread's default), and posts a share
     of them to a mailbox served by all threads, so that other threads verify
     and free them while the owner keeps allocating in the heap.  The owner
     waits until every posted block has been freed (each free is acknowledged)
     and then, sometimes, visits the heap single-threaded: after
     mi_heap_collect(heap, true), mi_heap_visit_blocks must report exactly the
     blocks still live (each visited block holds exactly one of them).  The
     heap then ends one of three ways:
       - mi_heap_destroy: live blocks vanish with the heap (and are not
         touched again);
       - mi_heap_delete: live blocks must stay valid (they move to the backing
         heap); they are verified, some freed here, some by other threads, and
         some carried over to the next round's threads;
       - left undeleted when the thread exits (the thread's heaps are deleted
         implicitly): its blocks must stay valid and are freed by threads of
         the next round.
     mi_heap_visit_blocks is only ever called by the owner when no other
     thread can be freeing into the heap (that case is racy by design).

   Why: heaps add paths the default heap does not have -- pages leaving with
   a heap (delete), whole-heap release (destroy) right after remote frees
   into it completed, remote frees into heaps whose thread has gone -- and
   visits must see a consistent heap once remote frees have been collected.

   usage: heap_stress [threads=4] [scale=20] [rounds=6]
     scale = heap lifetimes per thread per round. */
#include <cinttypes>
#include <cstdio>

#include "stress_common.h"

// The heap API is what this test exercises: tests/stress/meson.build always
// builds it against the library (STRESS_HAVE_MIMALLOC=1); without it there is
// nothing to run.
#if !STRESS_HAVE_MIMALLOC
#error "heap_stress needs the mimalloc heap API (STRESS_HAVE_MIMALLOC=1)"
#endif

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

using namespace stress;

namespace {

constexpr size_t kMaxSize = size_t{16} << 20;

struct Mail {
  void* p;
  std::atomic<int64_t>* ack;  // decremented once the block is freed (may be null)
};

std::mutex g_mail_mutex;
std::vector<Mail> g_mail;  // guarded by g_mail_mutex

std::mutex g_surv_mutex;
std::vector<void*> g_survivors;  // guarded by g_surv_mutex

std::atomic<unsigned> g_active{0};

std::atomic<uint64_t> g_heaps{0}, g_destroyed{0}, g_deleted{0}, g_left{0};
std::atomic<uint64_t> g_blocks{0}, g_remote_frees{0}, g_visits{0}, g_visited_blocks{0}, g_survivor_frees{0};

size_t pick_size(Rng& rng) {
  const uint64_t u = rng.below(1000);
  if (u < 900) return 8 + rng.below(1024);
  if (u < 977) return 1024 + rng.below(63 * 1024);
  if (u < 997) return 64 * 1024 + rng.below(960 * 1024);
  return (size_t{1} << 20) + rng.below(size_t{7} << 20);
}

void post(void* p, std::atomic<int64_t>* ack) {
  std::lock_guard<std::mutex> lock(g_mail_mutex);
  g_mail.push_back(Mail{p, ack});
}

/* Verify and free up to `max` posted blocks; returns how many. */
size_t serve_mail(Rng& rng, size_t max) {
  Mail batch[64];
  size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(g_mail_mutex);
    while (n < max && n < 64 && !g_mail.empty()) {
      const size_t i = rng.below(g_mail.size());
      batch[n++] = g_mail[i];
      g_mail[i] = g_mail.back();
      g_mail.pop_back();
    }
  }
  for (size_t i = 0; i < n; i++) {
    check_self_or_die("heap_stress: block freed by another thread", batch[i].p, kMaxSize);
    if (rng.chance(1, 2)) {
      mi_free(batch[i].p);
    } else {
      libc_free(batch[i].p);
    }
    g_remote_frees.fetch_add(1, std::memory_order_relaxed);
    if (batch[i].ack != nullptr) batch[i].ack->fetch_sub(1, std::memory_order_release);
  }
  return n;
}

void free_survivors(Rng& rng, size_t max) {
  std::vector<void*> mine;
  {
    std::lock_guard<std::mutex> lock(g_surv_mutex);
    while (mine.size() < max && !g_survivors.empty()) {
      mine.push_back(g_survivors.back());
      g_survivors.pop_back();
    }
  }
  for (void* p : mine) {
    check_self_or_die("heap_stress: survivor of an earlier heap/thread", p, kMaxSize);
    if (rng.chance(1, 2)) {
      mi_free(p);
    } else {
      libc_free(p);
    }
  }
  g_survivor_frees.fetch_add(mine.size(), std::memory_order_relaxed);
}

/* ---------------- visiting ---------------- */
struct VisitCtx {
  const mi_heap_t* heap;
  const std::vector<uintptr_t>* live;  // sorted
  std::vector<uint8_t> hit;
  size_t blocks = 0;
  size_t areas = 0;
  size_t foreign = 0;  // only counted with STRESS_MI209_WORKAROUNDS
};

bool visitor(const mi_heap_t* heap, const mi_heap_area_t* area, void* block, size_t block_size, void* arg) {
  VisitCtx* ctx = static_cast<VisitCtx*>(arg);
  if (heap != ctx->heap)
    fail("mi_heap_visit_blocks: visitor called with heap %p, visiting %p", static_cast<const void*>(heap),
         static_cast<const void*>(ctx->heap));
  if (block == nullptr) {
    ctx->areas++;
    if (area == nullptr) fail("mi_heap_visit_blocks: area is NULL");
    return true;
  }
  ctx->blocks++;
  const uintptr_t b = reinterpret_cast<uintptr_t>(block);
  const auto& live = *ctx->live;
  auto it = std::lower_bound(live.begin(), live.end(), b);
  if (it == live.end() || *it >= b + block_size) {
    if (STRESS_MI209_WORKAROUNDS) {  // 2.0.9 reclaims other heaps' pages into this one
      ctx->foreign++;
      return true;
    }
    fail(
        "mi_heap_visit_blocks: visited block %p (block size %zu, area block size %zu) holds no live block "
        "(freed blocks reported as live, or a block that was never allocated)",
        block, block_size, area ? area->block_size : size_t{0});
  }
  const size_t idx = static_cast<size_t>(it - live.begin());
  if (it + 1 != live.end() && *(it + 1) < b + block_size) {
    fail("mi_heap_visit_blocks: visited block %p (size %zu) holds two live blocks 0x%" PRIxPTR " and 0x%" PRIxPTR,
         block, block_size, *it, *(it + 1));
  }
  if (ctx->hit[idx]++ != 0) fail("mi_heap_visit_blocks: live block 0x%" PRIxPTR " visited twice", *it);
  return true;
}

void visit_and_check(mi_heap_t* h, const std::vector<void*>& live_blocks) {
  mi_heap_collect(h, true);  // collect completed remote frees: the heap is now exact
  std::vector<uintptr_t> live;
  live.reserve(live_blocks.size());
  for (void* p : live_blocks) live.push_back(reinterpret_cast<uintptr_t>(p));
  std::sort(live.begin(), live.end());
  VisitCtx ctx;
  ctx.heap = h;
  ctx.live = &live;
  ctx.hit.assign(live.size(), 0);
  STRESS_CHECK(mi_heap_visit_blocks(h, true, visitor, &ctx), "mi_heap_visit_blocks returned false");
  if (ctx.blocks - ctx.foreign != live.size()) {
    for (size_t i = 0; i < live.size(); i++) {
      if (ctx.hit[i] == 0) {
        fail("mi_heap_visit_blocks visited %zu blocks in %zu areas but %zu are live; e.g. 0x%" PRIxPTR
             " was not visited",
             ctx.blocks, ctx.areas, live.size(), live[i]);
      }
    }
    fail("mi_heap_visit_blocks visited %zu blocks but %zu are live", ctx.blocks, live.size());
  }
  g_visits.fetch_add(1, std::memory_order_relaxed);
  g_visited_blocks.fetch_add(ctx.blocks, std::memory_order_relaxed);
}

/* ---------------- one heap lifetime ---------------- */
void* heap_alloc(Rng& rng, mi_heap_t* h, size_t size) {
  void* p = nullptr;
  bool zero = false;
  switch (rng.below(8)) {
    case 0:
      p = mi_heap_zalloc(h, size);
      zero = true;
      break;
    case 1:
      p = mi_heap_calloc(h, 1, size);
      zero = true;
      break;
    case 2:
      p = mi_heap_mallocn(h, size / 8 + 1, 8);
      size = (size / 8 + 1) * 8;
      break;
    case 3: {
      const size_t align = size_t{8} << rng.below(STRESS_MAX_ALIGN_SHIFT - 2);
      p = mi_heap_malloc_aligned(h, size, align);
      STRESS_CHECK(p == nullptr || reinterpret_cast<uintptr_t>(p) % align == 0,
                   "mi_heap_malloc_aligned(%zu, %zu) returned misaligned %p", size, align, p);
      break;
    }
    case 4:
      if (size <= MI_SMALL_SIZE_MAX) {
        p = mi_heap_malloc_small(h, size);
        break;
      }
      [[fallthrough]];
    default: p = mi_heap_malloc(h, size); break;
  }
  STRESS_CHECK(p != nullptr, "heap allocation of %zu bytes returned NULL", size);
  if (zero) check_zero_or_die("heap_stress: zeroed heap block", p, size);
  STRESS_CHECK(mi_heap_contains_block(h, p), "mi_heap_contains_block(%p, %p) is false for a block just allocated in it",
               static_cast<void*>(h), p);
  STRESS_CHECK(mi_usable_size(p) >= size, "mi_usable_size(%p) = %zu < %zu", p, mi_usable_size(p), size);
  fill_self(p, size);
  g_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void remove_at(std::vector<void*>& v, size_t i) {
  v[i] = v.back();
  v.pop_back();
}

enum class End { kDestroy, kDelete, kLeave };

void heap_life(Rng& rng, unsigned& left_heaps) {
  mi_heap_t* h = mi_heap_new();
  STRESS_CHECK(h != nullptr, "mi_heap_new returned NULL");
  g_heaps.fetch_add(1, std::memory_order_relaxed);
  std::atomic<int64_t> pending{0};
  std::vector<void*> live;
  const size_t n = 50 + rng.below(250);
  live.reserve(n + 40);

  for (size_t i = 0; i < n; i++) {
    const uint64_t r = rng.below(100);
    if (r < 8 && !live.empty()) {  // local free
      const size_t k = rng.below(live.size());
      check_self_or_die("heap_stress: local free", live[k], kMaxSize);
      mi_free(live[k]);
      remove_at(live, k);
    } else if (r < 14 && !live.empty()) {  // realloc within the heap
      const size_t k = rng.below(live.size());
      const size_t old = check_self_or_die("heap_stress: before mi_heap_realloc", live[k], kMaxSize);
      const uint64_t old_key = key_for(live[k], old);
      const size_t now = pick_size(rng);
      void* q = mi_heap_realloc(h, live[k], now);
      STRESS_CHECK(q != nullptr, "mi_heap_realloc to %zu returned NULL", now);
      check_or_die("heap_stress: contents after mi_heap_realloc", q, old, old_key, old < now ? old : now);
      STRESS_CHECK(mi_heap_contains_block(h, q), "mi_heap_realloc(%p) returned %p outside the heap",
                   static_cast<void*>(h), q);
      fill_self(q, now);
      live[k] = q;
    } else if (r < 50) {  // post to another thread; it acknowledges the free
      void* p = heap_alloc(rng, h, pick_size(rng));
      pending.fetch_add(1, std::memory_order_relaxed);
      post(p, &pending);
    } else {
      live.push_back(heap_alloc(rng, h, pick_size(rng)));
    }
    if (rng.chance(1, 16)) serve_mail(rng, 8);
    if (rng.chance(1, 64)) mi_heap_collect(h, rng.chance(1, 2));  // while remote frees arrive
  }

  // The heap as the thread's default: plain mi_malloc lands in it.
  if (rng.chance(1, 4)) {
    void* got[32];
    mi_heap_t* old = mi_heap_set_default(h);
    STRESS_CHECK(mi_heap_get_default() == h, "mi_heap_set_default did not take effect");
    for (auto& p : got) {
      const size_t size = 8 + rng.below(2048);
      p = mi_malloc(size);
      STRESS_CHECK(p != nullptr, "mi_malloc(%zu) returned NULL", size);
      fill_self(p, size);
    }
    mi_heap_set_default(old);
    STRESS_CHECK(mi_heap_get_default() == old, "restoring the default heap did not take effect");
    for (void* p : got) {
      STRESS_CHECK(mi_heap_contains_block(h, p), "mi_malloc with heap %p as default returned %p outside it",
                   static_cast<void*>(h), p);
      live.push_back(p);
    }
  }

  // Wait until every posted block has been freed (serving the mailbox meanwhile).
  while (pending.load(std::memory_order_acquire) > 0) {
    if (serve_mail(rng, 16) == 0) std::this_thread::yield();
  }
  for (void* p : live) check_self_or_die("heap_stress: live block after remote frees", p, kMaxSize);
  if (rng.chance(1, 3)) visit_and_check(h, live);

  End end = static_cast<End>(rng.below(3));
  if (end == End::kLeave && left_heaps >= 2) end = End::kDelete;
  switch (end) {
    case End::kDestroy:
      if (STRESS_MI209_WORKAROUNDS) {
        mi_heap_delete(h);  // 2.0.9 would destroy reclaimed foreign blocks; free ours instead
        for (void* p : live) mi_free(p);
      } else {
        mi_heap_destroy(h);  // the live blocks are gone; never touched again
      }
      g_destroyed.fetch_add(1, std::memory_order_relaxed);
      break;
    case End::kDelete: {
      mi_heap_delete(h);
      g_deleted.fetch_add(1, std::memory_order_relaxed);
      std::vector<void*> carry;
      for (void* p : live) {
        check_self_or_die("heap_stress: block of a deleted heap", p, kMaxSize);
        const uint64_t r = rng.below(4);
        if (r == 0) {
          mi_free(p);
        } else if (r == 1) {
          post(p, nullptr);
        } else if (r == 2) {
          carry.push_back(p);
        } else {
          void* q = mi_realloc(p, 16 + rng.below(512));  // realloc of a block whose heap was deleted
          STRESS_CHECK(q != nullptr, "mi_realloc of a block of a deleted heap returned NULL");
          mi_free(q);
        }
      }
      std::lock_guard<std::mutex> lock(g_surv_mutex);
      g_survivors.insert(g_survivors.end(), carry.begin(), carry.end());
      break;
    }
    case End::kLeave: {
      left_heaps++;  // deleted implicitly when this thread exits
      g_left.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(g_surv_mutex);
      g_survivors.insert(g_survivors.end(), live.begin(), live.end());
      break;
    }
  }
}

void worker(unsigned round, unsigned tid, uint64_t lifetimes) {
  Rng rng(0x4EA9ull * 100003ull + round * 1009ull + tid);
  STRESS_CHECK(mi_heap_get_default() == mi_heap_get_backing(), "a new thread's default heap is not its backing heap");
  free_survivors(rng, 200);  // blocks of heaps deleted/left by earlier threads
  unsigned left_heaps = 0;
  for (uint64_t i = 0; i < lifetimes; i++) heap_life(rng, left_heaps);
  g_active.fetch_sub(1, std::memory_order_acq_rel);
  while (g_active.load(std::memory_order_acquire) > 0) {
    if (serve_mail(rng, 16) == 0) std::this_thread::yield();
  }
  while (serve_mail(rng, 64) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t threads = 4, scale = 20, rounds = 6;
  parse_args(argc, argv, "mi_heap_new/delete/destroy churn with remote frees into the heaps; single-threaded visits.",
             {{"threads", &threads, 1, 1024, "threads per round"},
              {"scale", &scale, 1, 1000000, "heap lifetimes per thread per round"},
              {"rounds", &rounds, 1, 1000000, "rounds (threads are recreated every round)"}});
  const bool verbose = std::getenv("STRESS_VERBOSE") != nullptr;
  Timer timer;

  // A single-threaded visit of a fresh heap first: exact counts, nothing else running.
  {
    Rng rng(0x5151ull);
    mi_heap_t* h = mi_heap_new();
    STRESS_CHECK(h != nullptr, "mi_heap_new returned NULL");
    std::vector<void*> live;
    for (int i = 0; i < 2000; i++) live.push_back(heap_alloc(rng, h, pick_size(rng)));
    for (size_t i = 0; i < live.size(); i += 2) mi_free(live[i]);
    std::vector<void*> kept;
    for (size_t i = 1; i < live.size(); i += 2) kept.push_back(live[i]);
    visit_and_check(h, kept);
    for (void* p : kept) check_self_or_die("heap_stress: block after visit", p, kMaxSize);
    mi_heap_destroy(h);
  }
  if (verbose) std::printf("single-threaded visit done at %.2f s\n", timer.seconds());

  for (unsigned round = 0; round < rounds; round++) {
    g_active.store(static_cast<unsigned>(threads));
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; t++) ts.emplace_back(worker, round, t, scale);
    for (auto& t : ts) t.join();
    check_invariants("after a round");
    STRESS_CHECK(g_mail.empty(), "mailbox not empty after round %u", round);
    if (verbose)
      std::printf("round %u done at %.2f s, RSS %.1f MiB\n", round, timer.seconds(),
                  static_cast<double>(rss_bytes()) / (1 << 20));
  }
  Rng rng(0xE4Dull);
  free_survivors(rng, SIZE_MAX);

  std::printf("heap_stress: threads=%" PRIu64 " scale=%" PRIu64 " rounds=%" PRIu64 ": %" PRIu64 " heaps (%" PRIu64
              " destroyed, %" PRIu64 " deleted, %" PRIu64 " left to thread exit), %" PRIu64 " blocks, %" PRIu64
              " freed by other threads, %" PRIu64 " survivors freed later, %" PRIu64 " visits (%" PRIu64
              " blocks), %.2f s: OK\n",
              threads, scale, rounds, g_heaps.load() + 1, g_destroyed.load() + 1, g_deleted.load(), g_left.load(),
              g_blocks.load(), g_remote_frees.load(), g_survivor_frees.load(), g_visits.load(), g_visited_blocks.load(),
              timer.seconds());
  return 0;
}
