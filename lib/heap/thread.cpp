// thread.cpp: thread and process life cycle.
//
// Owns: the thread-local default heap pointer; each thread's data (its backing
// heap and Tld), taken from the OS (with a small cache so thread churn costs
// no system call) or, for the first thread, from static storage; lazy thread
// init on the first allocation; thread exit (a pthread key destructor)
// abandoning the thread's segments; process init and the fork handlers
// (registered, with the process's exit, by api/process.cpp).
// Thread-safety: thread data belongs to its thread; the cache and counters are
// atomics; process init is guarded by an atomic state (and is re-entrant: a
// call from inside init, e.g. a library allocating, sees it as done).
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <new>

#include "../arena/arena.h"
#include "../common/locked_list.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../os/os.h"
#include "../segment/abandon.h"
#include "../segment/purger.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "abandoned_purge.h"
#include "cross_cache.h"
#include "full_held.h"
#include "heap.h"
#include "heap_stats.h"
#include "page.h"
#include "remote_batch.h"
#include "size_class.h"

namespace mi {

constinit Heap heap_empty{};
__thread Heap* tls_heap_default __attribute__((tls_model("initial-exec"))) = &heap_empty;

constinit std::atomic<mi_deferred_free_fun*> deferred_free_fun{nullptr};
constinit std::atomic<unsigned> slow_swap_blockers{0};

void heap_count_local_frees(bool on) noexcept {
  stats_counting_local_frees.store(on, std::memory_order_relaxed);
  if (on) {
    slow_swap_blockers.fetch_or(SWAP_COUNT_LOCAL, std::memory_order_relaxed);
  } else {
    slow_swap_blockers.fetch_and(~SWAP_COUNT_LOCAL, std::memory_order_relaxed);
  }
}

namespace {

struct ThreadData {
  Heap heap;  // the thread's backing heap
  MemId memid;
  ThreadData* live_next;  // the list of live threads' data (for fork)
  ThreadData* live_prev;
  Tld tld;  // last: its last field, untouched unless the thread grows blocks by realloc
};

// Live threads' data, so that a child process after fork() can abandon the
// heaps of the threads that did not come along (their segments would
// otherwise stay tied to thread ids that new threads of the child reuse).
pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
ThreadData* live_first = nullptr;

void live_add(ThreadData* td) {
  locked_list_add<ThreadData, &ThreadData::live_next, &ThreadData::live_prev>(&live_lock, &live_first, td);
}

void live_remove(ThreadData* td) {
  locked_list_remove<ThreadData, &ThreadData::live_next, &ThreadData::live_prev>(&live_lock, &live_first, td);
}

// The first thread's data lives in our image: no mmap during early start-up.
// constinit: a dynamic initialiser would run after the first allocations
// (our constructor runs first) and reset the main heap's direct table.
alignas(MI_CACHE_LINE) constinit ThreadData thread_data_static{};
std::atomic<bool> thread_data_static_used{false};

// A few freed thread data blocks, reused by new threads (thread pools that
// grow and shrink, short-lived worker threads).
constexpr size_t THREAD_DATA_CACHE = 16;
constinit std::atomic<ThreadData*> thread_data_cache[THREAD_DATA_CACHE]{};
// More of them, beyond the cache: thread data is never unmapped (thread_data_free).
pthread_mutex_t thread_data_spare_lock = PTHREAD_MUTEX_INITIALIZER;
ThreadData* thread_data_spare = nullptr;

std::atomic<size_t> live_threads{0};
pthread_key_t thread_key;
std::atomic<bool> thread_key_ready{false};

// 0 = not started, 1 = initialising, 2 = ready
std::atomic<int> process_state{0};
std::atomic<uintptr_t> process_init_thread{0};

std::atomic<void*> deferred_free_arg{nullptr};

size_t thread_data_size() { return align_up(sizeof(ThreadData), os_page_size()); }

// A freed thread's data, zeroed for a new thread; all but its remote_in line,
// which a thread that found the old thread in remote_batch's table just
// before it exited may still compare-and-swap (it finds REMOTE_IN_CLOSED
// there; remote_batch_open empties it).
void thread_data_clear(ThreadData* td) {
  uint8_t* p = reinterpret_cast<uint8_t*>(td);
  const size_t in = offsetof(ThreadData, tld) + offsetof(Tld, remote_in);
  const size_t in_end = in + MI_CACHE_LINE;
  memset(p, 0, in);
  memset(p + in_end, 0, sizeof(ThreadData) - in_end);
}

ThreadData* thread_data_alloc() {
  bool expected = false;
  if (thread_data_static_used.compare_exchange_strong(expected, true)) {
    thread_data_clear(&thread_data_static);
    thread_data_static.memid.kind = MemKind::static_;
    return &thread_data_static;
  }
  for (auto& slot : thread_data_cache) {
    ThreadData* td = slot.load(std::memory_order_relaxed);
    if (td != nullptr && slot.compare_exchange_strong(td, nullptr, std::memory_order_acq_rel)) {
      MemId memid = td->memid;
      thread_data_clear(td);
      td->memid = memid;
      return td;
    }
  }
  pthread_mutex_lock(&thread_data_spare_lock);
  ThreadData* spare = thread_data_spare;
  if (spare != nullptr) thread_data_spare = spare->live_next;
  pthread_mutex_unlock(&thread_data_spare_lock);
  if (spare != nullptr) {
    MemId memid = spare->memid;
    thread_data_clear(spare);
    spare->memid = memid;
    return spare;
  }
  MemId memid;
  void* p = os_alloc_aligned(thread_data_size(), os_page_size(), true, false, &memid);
  if (p == nullptr) return nullptr;
  ThreadData* td = static_cast<ThreadData*>(p);
  td->memid = memid;
  return td;
}

void thread_data_free(ThreadData* td) {
  if (td->memid.kind == MemKind::static_) {
    thread_data_static_used.store(false, std::memory_order_release);
    return;
  }
  for (auto& slot : thread_data_cache) {
    ThreadData* expected = nullptr;
    if (slot.compare_exchange_strong(expected, td, std::memory_order_acq_rel)) return;
  }
  // Never unmapped: another thread may still send a batch of frees to its
  // heap (heap/remote_batch.h), which finds it closed (or reused).
  pthread_mutex_lock(&thread_data_spare_lock);
  td->live_next = thread_data_spare;
  thread_data_spare = td;
  pthread_mutex_unlock(&thread_data_spare_lock);
}

ThreadData* thread_data_of(Heap* backing) {
  return reinterpret_cast<ThreadData*>(reinterpret_cast<uint8_t*>(backing) - offsetof(ThreadData, heap));
}

void tld_init(Tld* tld, Heap* backing) {
  tld->heap_backing = backing;
  tld->heaps = backing;
  tld->segments.stats = &tld->stats;
  tld->node = -1;
  tld->cpu = TLD_CPU_NONE;
  long delay = option_get(mi_option_eager_commit_delay);
  tld->segments.eager_delay_left = (delay > 0) ? static_cast<size_t>(delay) : 0;
  tld->segments.realloc_growing = false;
  // (realloc_grown is left as it is: a stale address only makes realloc
  // take a block it matches for a growing buffer's, and clearing it would
  // touch 1 KiB more of each thread's memory)
}

// Sets up the calling thread. pre: it has no initialised default heap.
Heap* thread_setup() {
  ThreadData* td = thread_data_alloc();
  if (td == nullptr) return nullptr;
  Heap* heap = &td->heap;
  heap_init(heap, &td->tld, 0, false, 0);
  tld_init(&td->tld, heap);
  remote_batch_open(&td->tld);
  cross_cache_open(&td->tld);
  heap->cross_free = td->tld.cross_free;
  tls_heap_default = heap;
  if (thread_key_ready.load(std::memory_order_acquire)) pthread_setspecific(thread_key, heap);
  live_add(td);
  live_threads.fetch_add(1, std::memory_order_relaxed);
  stat_increase(stats_global.threads, 1);
  return heap;
}

// The thread leaves: its heaps give their pages back or abandon them.
void thread_done_heap(Heap* heap) {
  if (!heap_is_initialized(heap)) return;
  Tld* tld = heap->tld;
  Heap* backing = tld->heap_backing;
  if (backing == nullptr || backing->thread_id != thread_id()) return;  // not this thread's
  // Heaps the program created and did not delete: their pages move to the backing heap.
  for (Heap* h = tld->heaps; h != nullptr;) {
    Heap* next = h->next;
    if (h != backing) mi_heap_delete(h);
    h = next;
  }
  MI_ASSERT(tld->heaps == backing && backing->next == nullptr);  // the others were deleted
  heap_collect(backing, Collect::abandon);
  // Nothing of the thread's is left: every segment was freed or abandoned
  // (another thread may take it at once), every page with it.
  MI_ASSERT(backing->page_count == 0 && tld->segments.count == 0);
  MI_ASSERT_EXPENSIVE(segments_tld_is_valid(&tld->segments));
  heap_stats_merge(tld);
  tls_heap_default = &heap_empty;
  live_threads.fetch_sub(1, std::memory_order_relaxed);
  stat_decrease(stats_global.threads, 1);
  live_remove(thread_data_of(backing));
  thread_data_free(thread_data_of(backing));
}

void thread_key_destructor(void* value) {
  Heap* heap = static_cast<Heap*>(value);
  if (heap != nullptr) thread_done_heap(heap);
}

}  // namespace

void heap_init(Heap* heap, Tld* tld, int arena_id, bool no_reclaim, uint8_t tag) noexcept {
  new (heap) Heap();
  heap->direct_bin = direct_bins;
  heap->tld = tld;
  heap->thread_id = thread_id();
  heap->arena_id = arena_id;
  heap->numa_node = -1;
  heap->no_reclaim = no_reclaim;
  heap->tag = tag;
  heap->page_retired_min = BIN_FULL;
  heap->page_retired_max = 0;
  heap->full_held_room = heap->full_held_max = full_held_limit();
  heap->pages[0].block_size = WORD_SIZE;
  for (size_t bin = 1; bin <= BIN_LARGE_MAX; bin++) heap->pages[bin].block_size = bin_block_sizes[bin];
  heap->pages[BIN_HUGE].block_size = LARGE_OBJ_SIZE_MAX + WORD_SIZE;
  heap->pages[BIN_FULL].block_size = LARGE_OBJ_SIZE_MAX + 2 * WORD_SIZE;
}

Heap* thread_heap_init() noexcept {
  if (process_state.load(std::memory_order_acquire) != 2) process_init();
  Heap* heap = tls_heap_default;
  if (heap_is_initialized(heap)) return heap;
  return thread_setup();
}

Heap* heap_get_default_init() noexcept {
  Heap* heap = tls_heap_default;
  if (MI_LIKELY(heap_is_initialized(heap))) return heap;
  return thread_heap_init();
}

Heap* heap_by_tag(Heap* heap, uint8_t tag) noexcept {
  if (heap->tag == tag) return heap;
  for (Heap* h = heap->tld->heaps; h != nullptr; h = h->next) {
    if (h->tag == tag) return h;
  }
  return nullptr;
}

size_t thread_count() noexcept { return live_threads.load(std::memory_order_relaxed); }

void heap_deferred_free(Heap* heap, bool force) noexcept {
  mi_deferred_free_fun* fun = deferred_free_fun.load(std::memory_order_acquire);
  if (fun == nullptr || heap->tld->recurse) return;
  heap->tld->recurse = true;
  fun(force, heap->tld->heartbeat, deferred_free_arg.load(std::memory_order_acquire));
  heap->tld->recurse = false;
}

void threads_visit_live(void (*fn)(const Tld* tld, void* arg), void* arg) noexcept {
  pthread_mutex_lock(&live_lock);
  for (ThreadData* td = live_first; td != nullptr; td = td->live_next) fn(&td->tld, arg);
  pthread_mutex_unlock(&live_lock);
}

bool process_is_initialized() noexcept { return process_state.load(std::memory_order_acquire) == 2; }

void process_init() noexcept {
  int state = 0;
  if (!process_state.compare_exchange_strong(state, 1, std::memory_order_acq_rel)) {
    if (state == 2) return;
    // Initialising: a nested call from this thread returns (it sees enough
    // to allocate: the main heap is set up first); other threads wait.
    if (process_init_thread.load(std::memory_order_acquire) == thread_id()) return;
    while (process_state.load(std::memory_order_acquire) != 2) sched_yield();
    return;
  }
  process_init_thread.store(thread_id(), std::memory_order_release);
  stats_set_process_start();
  options_init();
  os_init();
  topology_init();
  // the initialising thread gets the static thread data
  if (!heap_is_initialized(tls_heap_default)) thread_setup();
  if (pthread_key_create(&thread_key, &thread_key_destructor) == 0) {
    thread_key_ready.store(true, std::memory_order_release);
    if (heap_is_initialized(tls_heap_default)) pthread_setspecific(thread_key, tls_heap_default);
  }
  process_state.store(2, std::memory_order_release);
  // Start-up reservations first (arena 1, 2, ...), on the kernel's topology:
  // a topology that hwloc reads from the environment cannot be bound to anyway.
  arenas_init_reserve();
  options_mark_startup_done();
  if (option_is_enabled(mi_option_verbose)) {
    verbose_message("mimalloc-numa 0.1.0 initialised: pid %ld, %d NUMA node(s), page size %zu, segment size %zu KiB",
                    static_cast<long>(getpid()), numa_node_count(), os_page_size(), SEGMENT_SIZE / KiB);
    options_print_all();
  }
}

void process_fork_prepare() noexcept {
  pthread_mutex_lock(&live_lock);
  abandoned_fork_prepare();
  segments_fork_prepare();
  arenas_fork_prepare();
}

void process_fork_parent() noexcept {
  arenas_fork_parent();
  segments_fork_parent();
  abandoned_fork_parent();
  pthread_mutex_unlock(&live_lock);
}

void process_fork_child() noexcept {
  stats_fork_child_unlock();
  arenas_fork_child();
  abandoned_fork_child();
  // Only the forking thread came along: the other threads' segments are
  // abandoned, as if those threads had exited. Not through their heaps
  // (heap_collect, as a thread's exit does): a thread stops at the fork
  // wherever it is, and its heap's page queues or a page it was freeing into
  // its segment may be half-changed (a child's collect of such a heap failed
  // segment_is_valid: tests/unit/fork_test.cpp). The segments are walked
  // instead, and mended where a page was in transit (segment.h).
  Heap* self = tls_heap_default;
  ThreadData* mine = heap_is_initialized(self) ? thread_data_of(self->tld->heap_backing) : nullptr;
  segments_fork_child(thread_id());
  purger_after_fork();
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  live_lock = fresh;
  thread_data_spare_lock = fresh;
  ThreadData* td = live_first;
  while (td != nullptr) {
    ThreadData* next = td->live_next;
    if (td != mine) {
      // (the heap list changes by single stores: whole at any moment)
      for (Heap* h = td->tld.heaps; h != nullptr; h = h->next) {
        delayed_list_to_pages(h);
        full_held_fork_orphan(h);
      }
      remote_batch_fork_orphan(&td->tld);
      cross_cache_fork_orphan(&td->tld);
      live_remove(td);
      live_threads.fetch_sub(1, std::memory_order_relaxed);
      stat_decrease(stats_global.threads, 1);
      // its memory stays: blocks of its non-backing heaps' structs may still be referenced
    }
    td = next;
  }
  // the child's statistics start now (elapsed, totals, peaks): its counts so
  // far are its parent's
  if (mine != nullptr) heap_stats_merge(&mine->tld);
  stats_fork_child();
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------
using namespace mi;

extern "C" {

void mi_thread_init(void) mi_attr_noexcept { (void)heap_get_default_init(); }

void mi_thread_done(void) mi_attr_noexcept {
  Heap* heap = tls_heap_default;
  if (!heap_is_initialized(heap)) return;
  Heap* backing = heap->tld->heap_backing;
  if (thread_key_ready.load(std::memory_order_acquire)) pthread_setspecific(thread_key, nullptr);
  thread_done_heap(backing);
}

void mi_register_deferred_free(mi_deferred_free_fun* fn, void* arg) mi_attr_noexcept {
  deferred_free_arg.store(arg, std::memory_order_release);
  deferred_free_fun.store(fn, std::memory_order_release);
  if (fn != nullptr) {
    slow_swap_blockers.fetch_or(SWAP_DEFERRED_FREE, std::memory_order_release);
  } else {
    slow_swap_blockers.fetch_and(~SWAP_DEFERRED_FREE, std::memory_order_release);
  }
}

}  // extern "C"

namespace {

// Runs when the library is loaded (before main for LD_PRELOAD and linked
// programs). Here, not in api/process.cpp with mi_process_init and the exit
// handler: this file is linked into every program that allocates, also from
// the static library, which links only the objects a program refers to;
// this call brings api/process.cpp (and its destructor) along.
__attribute__((constructor(101))) void mi_library_load() { mi_process_init(); }

}  // namespace
