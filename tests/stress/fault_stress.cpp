/* fault_stress -- the allocator while its system calls fail on purpose.

   What it checks:
     A library built with -Dfault_injection=true (lib/os/fault.h) fails
     mmap, munmap, madvise, mprotect, mbind, mremap and the huge-page
     mappings at the rate given. Meanwhile several rounds of threads (started
     with pthread_create, retried while it fails: its thread data comes from
     us) allocate through every entry point (malloc, calloc, mi_zalloc,
     posix_memalign, aligned_alloc, mi_malloc_aligned, mi_mallocn), free,
     realloc, and hand blocks to each other through a shared array of slots
     (remote frees; blocks outliving their thread, into abandoned and
     reclaimed segments), and now and then mi_collect(true) purges. A NULL is
     allowed (with errno ENOMEM); everything else is checked:
       - every block holds the pattern written into it until it is freed
         (overlapping blocks, a block handed out twice or a lost page show
         up as a corrupted block);
       - calloc and mi_zalloc blocks read as zero; aligned ones are aligned;
       - realloc keeps the prefix, and a failed realloc leaves the old block
         as it was;
       - the library injected failures, at about the rate asked for (within
         a third to three times it, where 20 or more were expected), and
         with expect_nulls some allocation did return NULL;
       - with injection off again, every allocation succeeds (the allocator
         recovered) and every block still held is intact.
     A crash or an abort of the library's invariant checks (the debug build
     runs its walkers on every generic-path call) fails the test; a hang
     fails it too (its own alarm, before meson's timeout).
   The library's warnings go to a counter (mi_register_output), not to the log.

   usage: fault_stress SPEC [threads=4] [rounds=4] [ops=4000] [expect_nulls=0]
          fault_stress start
     SPEC as MI_FAULT_INJECT (e.g. "rate=1%"). `start` is run with
     MI_FAULT_INJECT set in the environment: faults from the process's very
     start (the allocator's own initialisation), with plain C allocations;
     NULLs are allowed there but not required.
   Exit 0 on success, 1 on a failure (also when the library has no fault
   injection: the test exists only in builds made with it). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stress_common.h"

// Present only in a library built with -Dfault_injection=true (lib/os/fault.h).
extern "C" bool mi_fault_inject_config(const char* spec) __attribute__((weak));
extern "C" void mi_fault_inject_counts(unsigned long long* calls, unsigned long long* failed) __attribute__((weak));

using namespace stress;

namespace {

constexpr size_t kMaxThreads = 16;
constexpr size_t kMaxLive = 256;
constexpr size_t kTransfers = 512;
constexpr size_t kMaxSize = size_t{8} << 20;
constexpr unsigned kAlarmSeconds = 240;

std::atomic<void*> g_transfer[kTransfers];

enum Entry { E_MALLOC, E_CALLOC, E_ZALLOC, E_MEMALIGN, E_ALIGNED_ALLOC, E_MI_ALIGNED, E_MALLOCN, E_REALLOC, E_COUNT };
const char* const kEntryNames[E_COUNT] = {
    "malloc", "calloc", "mi_zalloc", "posix_memalign", "aligned_alloc", "mi_malloc_aligned", "mi_mallocn", "realloc"};
std::atomic<uint64_t> g_calls[E_COUNT];
std::atomic<uint64_t> g_nulls[E_COUNT];
std::atomic<uint64_t> g_frees{0}, g_remote{0}, g_collects{0}, g_thread_retries{0};

// The library's messages: counted, the first few kept.
std::atomic<uint64_t> g_messages{0};
char g_first_messages[4][256];

void count_output(const char* msg, void*) {
  const uint64_t n = g_messages.fetch_add(1, std::memory_order_relaxed);
  if (n < 4) {
    std::strncpy(g_first_messages[n], msg, sizeof(g_first_messages[n]) - 1);
  }
}

void on_alarm(int) {
  static const char msg[] = "fault_stress: FAIL: no progress within the alarm: a hang\n";
  (void)!write(2, msg, sizeof(msg) - 1);
  _exit(3);
}

size_t pick_size(Rng& rng) {
  const uint64_t u = rng.below(1000);
  unsigned lo, hi;
  if (u < 850) {  // 8 B .. 1 KiB
    lo = 3;
    hi = 9;
  } else if (u < 980) {  // 1 KiB .. 128 KiB
    lo = 10;
    hi = 16;
  } else if (u < 997) {  // 128 KiB .. 2 MiB (large pages)
    lo = 17;
    hi = 20;
  } else {  // 4 MiB .. 8 MiB (a segment each)
    lo = 22;
    hi = 22;
  }
  const size_t base = size_t{1} << rng.range(lo, hi);
  return base + rng.below(base);
}

// One allocation through a random entry point; NULL allowed (counted, errno checked).
void* alloc_block(Rng& rng, size_t size) {
  const Entry e = static_cast<Entry>(rng.below(E_REALLOC));
  size_t align = 0;
  bool zero = false;
  void* p = nullptr;
  errno = 0;
  switch (e) {
    case E_MALLOC: p = std::malloc(size); break;
    case E_CALLOC:
      p = std::calloc(1, size);
      zero = true;
      break;
    case E_ZALLOC:
      p = mi_zalloc(size);
      zero = true;
      break;
    case E_MEMALIGN: {
      align = size_t{16} << rng.below(6);
      const int err = posix_memalign(&p, align, size);
      if (err != 0) {
        STRESS_CHECK(err == ENOMEM, "posix_memalign(%zu, %zu) failed with %d, not ENOMEM", align, size, err);
        p = nullptr;
        errno = ENOMEM;
      }
      break;
    }
    case E_ALIGNED_ALLOC:
      align = size_t{16} << rng.below(6);
      p = aligned_alloc(align, (size + align - 1) / align * align);
      break;
    case E_MI_ALIGNED:
      align = size_t{8} << rng.below(7);
      p = mi_malloc_aligned(size, align);
      break;
    default: p = mi_mallocn(size / 8 + 1, 8); break;
  }
  g_calls[e].fetch_add(1, std::memory_order_relaxed);
  if (p == nullptr) {
    STRESS_CHECK(errno == ENOMEM, "%s(%zu) returned NULL with errno %d, not ENOMEM", kEntryNames[e], size, errno);
    g_nulls[e].fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (align != 0) {
    STRESS_CHECK(reinterpret_cast<uintptr_t>(p) % align == 0, "%s(%zu, align %zu) returned misaligned %p",
                 kEntryNames[e], size, align, p);
  }
  if (zero) check_zero_or_die(kEntryNames[e], p, size);
  fill_self(p, size);
  return p;
}

void free_block(Rng& rng, void* p, const char* what) {
  check_self_or_die(what, p, kMaxSize * 2);
  if (rng.chance(1, 2)) std::free(p);
  else mi_free(p);
  g_frees.fetch_add(1, std::memory_order_relaxed);
}

// realloc of a live block: a NULL leaves it as it was.
void* realloc_block(Rng& rng, void* p) {
  const size_t old_size = check_self_or_die("fault_stress: before realloc", p, kMaxSize * 2);
  const uint64_t old_key = key_for(p, old_size);
  size_t new_size = rng.chance(1, 2) ? 8 + rng.below(old_size) : old_size + 1 + rng.below(old_size + 64);
  if (new_size > kMaxSize) new_size = kMaxSize;
  errno = 0;
  void* q = rng.chance(1, 2) ? std::realloc(p, new_size) : mi_realloc(p, new_size);
  g_calls[E_REALLOC].fetch_add(1, std::memory_order_relaxed);
  if (q == nullptr) {
    STRESS_CHECK(errno == ENOMEM, "realloc(%p, %zu) returned NULL with errno %d, not ENOMEM", p, new_size, errno);
    g_nulls[E_REALLOC].fetch_add(1, std::memory_order_relaxed);
    check_or_die("fault_stress: the old block after a failed realloc", p, old_size, old_key, old_size);
    return p;
  }
  const size_t keep = old_size < new_size ? old_size : new_size;
  check_or_die("fault_stress: the prefix after realloc", q, old_size, old_key, keep);
  fill_self(q, new_size);
  return q;
}

struct WorkerArg {
  unsigned round;
  unsigned tid;
  uint64_t ops;
};

void* worker(void* argp) {
  const WorkerArg* arg = static_cast<const WorkerArg*>(argp);
  Rng rng(0xFA017000ull + arg->round * 7919ull + arg->tid);
  void* live[kMaxLive];
  size_t n = 0;
  for (uint64_t op = 0; op < arg->ops; op++) {
    const uint64_t r = rng.below(100);
    if (n == 0 || r < 40) {
      if (n == kMaxLive) free_block(rng, live[--n], "fault_stress: free (set full)");
      void* p = alloc_block(rng, pick_size(rng));
      if (p != nullptr) live[n++] = p;
    } else if (r < 65) {
      const size_t i = rng.below(n);
      void* p = live[i];
      live[i] = live[--n];
      free_block(rng, p, "fault_stress: free");
    } else if (r < 78) {
      const size_t i = rng.below(n);
      live[i] = realloc_block(rng, live[i]);
    } else if (r < 92) {
      // swap one of ours with a slot of the shared array; adopt what was there
      const size_t i = rng.below(n);
      void* mine = live[i];
      live[i] = live[--n];
      check_self_or_die("fault_stress: before a hand-over", mine, kMaxSize * 2);
      void* got = g_transfer[rng.below(kTransfers)].exchange(mine, std::memory_order_acq_rel);
      if (got != nullptr) {
        check_self_or_die("fault_stress: a block handed over by another thread", got, kMaxSize * 2);
        if (rng.chance(1, 2)) {
          free_block(rng, got, "fault_stress: remote free");
          g_remote.fetch_add(1, std::memory_order_relaxed);
        } else {
          live[n++] = got;
        }
      }
    } else if (r < 99) {
      check_self_or_die("fault_stress: live block", live[rng.below(n)], kMaxSize * 2);
    } else {
      mi_collect(rng.chance(1, 2));  // purges: madvise and mprotect under faults
      g_collects.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Leave some for the next round's threads, free the rest here.
  while (n > 0) {
    void* p = live[--n];
    if (rng.chance(1, 3)) {
      p = g_transfer[rng.below(kTransfers)].exchange(p, std::memory_order_acq_rel);
      if (p == nullptr) continue;
    }
    free_block(rng, p, "fault_stress: free at thread exit");
  }
  return nullptr;
}

// The rate of a spec that is only "rate=R" or "rate=R%" (0 otherwise).
double rate_of(const char* spec) {
  if (std::strncmp(spec, "rate=", 5) != 0) return 0;
  char* end = nullptr;
  double r = std::strtod(spec + 5, &end);
  if (end == spec + 5) return 0;
  if (*end == '%') {
    r /= 100;
    end++;
  }
  return (*end == 0 && r > 0 && r <= 1) ? r : 0;
}

// Faults from the very start (MI_FAULT_INJECT in the environment): plain C
// allocations only, so that nothing but the allocator can fail.
int start_mode() {
  unsigned long long calls = 0, failed = 0;
  mi_fault_inject_counts(&calls, &failed);
  std::printf("fault_stress start: %llu selected calls so far, %llu failed on purpose\n", calls, failed);
  if (calls == 0) {
    std::fprintf(stderr, "fault_stress: FAIL: MI_FAULT_INJECT is not in effect (no call counted at start-up)\n");
    return 1;
  }
  Rng rng(0x57A27ull);
  static void* live[512];
  uint64_t nulls = 0, ops = 0;
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < 512; i++) {
      const size_t size = pick_size(rng);
      live[i] = alloc_block(rng, size);
      ops++;
      if (live[i] == nullptr) nulls++;
    }
    for (size_t i = 0; i < 512; i++) {
      if (live[i] != nullptr && rng.chance(1, 4)) live[i] = realloc_block(rng, live[i]);
    }
    for (size_t i = 0; i < 512; i++) {
      if (live[i] != nullptr) free_block(rng, live[i], "fault_stress start: free");
    }
    mi_collect(true);
  }
  mi_fault_inject_counts(&calls, &failed);
  std::printf("fault_stress start: %" PRIu64 " allocations, %" PRIu64 " NULL; %llu calls, %llu failed\n", ops, nulls,
              calls, failed);
  // Whether an allocation saw NULL depends on which calls failed (after a
  // successful arena reservation there are few): not required here.
  STRESS_CHECK(failed > 0, "no system call failed under MI_FAULT_INJECT");
  mi_fault_inject_config("off");
  for (size_t i = 0; i < 512; i++) {
    live[i] = alloc_block(rng, pick_size(rng));
    STRESS_CHECK(live[i] != nullptr, "an allocation failed after fault injection was turned off");
  }
  for (size_t i = 0; i < 512; i++) free_block(rng, live[i], "fault_stress start: free after recovery");
  std::printf("fault_stress start: recovered; %" PRIu64 " library messages: OK\n", g_messages.load());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // meson defines this test only in a build with -Dfault_injection=true: a
  // library without the hook there is a broken build, not a reason to skip
  if (&mi_fault_inject_config == nullptr || &mi_fault_inject_counts == nullptr) {
    std::fprintf(stderr,
                 "fault_stress: FAIL: the library has no fault injection (mi_fault_inject_config); "
                 "it must be built with -Dfault_injection=true\n");
    return 1;
  }
  signal(SIGALRM, on_alarm);
  alarm(kAlarmSeconds);
  mi_register_output(&count_output, nullptr);
  if (argc == 2 && std::strcmp(argv[1], "start") == 0) return start_mode();
  if (argc < 2) {
    std::fprintf(stderr, "usage: fault_stress SPEC [threads] [rounds] [ops] [expect_nulls] | fault_stress start\n");
    return 2;
  }
  const char* spec = argv[1];
  uint64_t threads = 4, rounds = 4, ops = 4000, expect_nulls = 0;
  parse_args(argc - 1, argv + 1, "the allocator while its system calls fail on purpose",
             {{"threads", &threads, 1, kMaxThreads, "threads per round"},
              {"rounds", &rounds, 1, 1000, "rounds of threads"},
              {"ops", &ops, 1, 100000000, "operations per thread"},
              {"expect_nulls", &expect_nulls, 0, 1, "1: some allocation must return NULL"}});
  g_prog = "fault_stress";
  Timer timer;

  STRESS_CHECK(mi_fault_inject_config(spec), "bad fault injection setting \"%s\"", spec);
  static WorkerArg args[kMaxThreads];
  static pthread_t ids[kMaxThreads];
  for (unsigned round = 0; round < rounds; round++) {
    for (unsigned t = 0; t < threads; t++) {
      args[t] = WorkerArg{round, t, ops};
      // the thread's start needs memory (glibc allocates its data with us):
      // a failure is a fault like any other; try again
      int err;
      int tries = 0;
      while ((err = pthread_create(&ids[t], nullptr, worker, &args[t])) != 0) {
        STRESS_CHECK(err == EAGAIN && ++tries < 1000, "pthread_create failed: %s", std::strerror(err));
        g_thread_retries.fetch_add(1, std::memory_order_relaxed);
      }
    }
    for (unsigned t = 0; t < threads; t++) pthread_join(ids[t], nullptr);
  }
  unsigned long long calls = 0, failed = 0;
  mi_fault_inject_counts(&calls, &failed);
  mi_fault_inject_config("off");

  // What the last round left in the shared array: intact, and freed now.
  Rng rng(0xC1EA2ull);
  size_t left = 0;
  for (auto& slot : g_transfer) {
    void* p = slot.exchange(nullptr);
    if (p != nullptr) {
      free_block(rng, p, "fault_stress: left in the shared array");
      left++;
    }
  }
  // Recovered: with no more faults every allocation succeeds.
  static void* again[1024];
  for (auto& p : again) {
    p = alloc_block(rng, pick_size(rng));
    STRESS_CHECK(p != nullptr, "an allocation failed after fault injection was turned off");
  }
  for (auto& p : again) free_block(rng, p, "fault_stress: free after recovery");

  uint64_t total_calls = 0, total_nulls = 0;
  std::printf("fault_stress \"%s\": %" PRIu64 " threads x %" PRIu64 " rounds x %" PRIu64 " ops in %.2f s\n", spec,
              threads, rounds, ops, timer.seconds());
  for (int e = 0; e < E_COUNT; e++) {
    total_calls += g_calls[e].load();
    total_nulls += g_nulls[e].load();
    std::printf("  %-18s %8" PRIu64 " calls %6" PRIu64 " NULL\n", kEntryNames[e], g_calls[e].load(), g_nulls[e].load());
  }
  std::printf("  system calls: %llu selected, %llu failed on purpose (%.2f%%); %" PRIu64 " frees (%" PRIu64
              " remote), %" PRIu64 " collects, %" PRIu64 " pthread_create retries, %zu blocks left over\n",
              calls, failed, calls ? 100.0 * static_cast<double>(failed) / static_cast<double>(calls) : 0.0,
              g_frees.load(), g_remote.load(), g_collects.load(), g_thread_retries.load(), left);
  std::printf("  %" PRIu64 " library messages%s\n", g_messages.load(), g_messages.load() ? ", the first:" : "");
  for (uint64_t i = 0; i < 4 && i < g_messages.load(); i++) std::printf("    %s", g_first_messages[i]);

  STRESS_CHECK(calls > 0, "no system call was counted: injection not in effect");
  STRESS_CHECK(failed > 0, "no system call failed although \"%s\" was asked for", spec);
  // A plain rate: the share that failed is about the rate asked for, when
  // enough calls were made to tell (20 failures expected: the share is then
  // within a third to three times the rate but for a chance below 1e-3).
  const double asked = rate_of(spec);
  if (asked > 0 && static_cast<double>(calls) * asked >= 20) {
    const double share = static_cast<double>(failed) / static_cast<double>(calls);
    STRESS_CHECK(share >= asked / 3 && share <= asked * 3, "%llu of %llu calls failed (%.3f%%), asked for %.3f%%",
                 failed, calls, 100 * share, 100 * asked);
  }
  STRESS_CHECK(expect_nulls == 0 || total_nulls > 0, "no allocation returned NULL although %llu system calls failed",
               failed);
  std::printf("fault_stress: OK (%" PRIu64 " of %" PRIu64 " allocations NULL)\n", total_nulls, total_calls);
  return 0;
}
