// purger.cpp: the background purge thread (option purge_thread), which also
// runs one task of the api layer (the statistics publisher, purger_set_task).
//
// Owns: one thread that sleeps until the earliest scheduled purge is due and
// runs it: free pages of segments (whoever owns them: the purge list is
// shared) and free arena blocks, so that an idle process returns freed
// memory to the OS without waiting for its next allocation.
// fork(): the thread does not exist in the child; the child starts its own on
// its first allocator slow path after fork (purger_after_fork + purger_poll).
// Started for the statistics publisher alone, it waits for the process's
// first allocation (purger_start).
// Thread-safety: start/stop/poll are safe from any thread (atomics).
#include "purger.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>

#include "../arena/arena.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../os/os.h"
#include "segment.h"

namespace mi {

namespace {

std::atomic<int> purger_state{0};  // 0 = not running, 1 = running, 2 = must (re)start
pthread_t purger_thread;
// Counts the threads that reached purger_main (a fork child's restart is the
// next): what ran before it in the new thread is the C library's and the
// sanitizers' start-up, which may allocate (ASan's pthread_getattr_np does:
// that first allocation may reclaim an abandoned segment).
std::atomic<uint32_t> purger_entered{0};
std::atomic<int64_t (*)() noexcept> purger_task{nullptr};
std::atomic<size_t (*)(bool) noexcept> purger_heap_purge{nullptr};

constexpr int64_t NEVER = INT64_MAX;
constexpr size_t PURGER_STACK_SIZE = 256 * KiB;

void* purger_main(void*) {
  purger_entered.fetch_add(1, std::memory_order_release);
  int64_t task_due = 0;  // os_clock_ms; a (re)started thread runs the task at once
  for (;;) {
    const bool purging = option_is_enabled(mi_option_purge_thread);
    int64_t (*task)() noexcept = purger_task.load(std::memory_order_acquire);
    if (task != nullptr && task_due != NEVER && os_clock_ms() >= task_due) {
      const int64_t next = task();
      task_due = (next < 0) ? NEVER : os_clock_ms() + next;
    }
    int64_t wait_ms = purging ? arenas_next_purge_in_ms() : -1;
    int64_t pages_ms = purging ? segments_next_purge_in_ms() : -1;
    if (pages_ms >= 0 && (wait_ms < 0 || pages_ms < wait_ms)) wait_ms = pages_ms;
    if (wait_ms < 0 && !purging) wait_ms = 1000;
    if (wait_ms < 0) {
      // nothing scheduled: look again after the arena purge delay
      long delay = option_get(mi_option_purge_delay);
      long mult = option_get(mi_option_arena_purge_mult);
      wait_ms = (delay > 0) ? static_cast<int64_t>(delay) * (mult > 0 ? mult : 1) : 1000;
    }
    if (task_due != NEVER && task != nullptr) {
      const int64_t task_ms = task_due - os_clock_ms();
      if (task_ms < wait_ms) wait_ms = task_ms;
    }
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > 1000) wait_ms = 1000;
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(wait_ms / 1000);
    ts.tv_nsec = static_cast<long>((wait_ms % 1000) * 1000000);
    nanosleep(&ts, nullptr);
    if (purging && option_get(mi_option_purge_delay) >= 0) {
      segments_try_purge(false);  // free pages of segments threads still own
      arenas_try_purge(false);
      size_t (*heap_purge)(bool) noexcept = purger_heap_purge.load(std::memory_order_acquire);
      if (heap_purge != nullptr) (void)heap_purge(false);  // and free blocks of exited threads' pages
    }
  }
  return nullptr;
}

bool purger_spawn() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  // A small stack: the default (RLIMIT_STACK, 8 MiB) is address space every
  // process on the allocator would carry for a thread that needs some 30 KiB
  // (a purge; the statistics snapshot, ~20 KiB of locals); and a limit on it
  // (ulimit -v, LimitAS=) counts that.
  pthread_attr_setstacksize(&attr, PURGER_STACK_SIZE);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Every signal blocked in the thread (it inherits the mask it is created
  // with): a signal sent to the process goes to a thread that does not block
  // it, and ours has no handler's context. PostgreSQL's postmaster runs its
  // main loop on SIGCHLD/SIGUSR1 and expects them in its own thread: one
  // delivered to ours hung its start-up.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  int err = pthread_create(&purger_thread, &attr, &purger_main, nullptr);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    warning_message(
        "purge_thread: cannot start the background purge thread: %s; memory is purged on allocation "
        "calls only",
        errno_text(err));
    return false;
  }
  verbose_message("background thread started (%s%s%s)", option_is_enabled(mi_option_purge_thread) ? "purge_thread" : "",
                  option_is_enabled(mi_option_purge_thread) && purger_task.load() != nullptr ? ", " : "",
                  purger_task.load() != nullptr ? "stats_publish" : "");
  return true;
}

}  // namespace

void purger_set_task(int64_t (*task)() noexcept) noexcept { purger_task.store(task, std::memory_order_release); }

void purger_set_heap_purge(size_t (*purge)(bool force) noexcept) noexcept {
  purger_heap_purge.store(purge, std::memory_order_release);
}

void purger_start() noexcept {
  const bool purging = option_is_enabled(mi_option_purge_thread);
  if (!purging && purger_task.load(std::memory_order_acquire) == nullptr) return;
  // For the task alone (the statistics publisher), a process that has no
  // segment yet gets the thread at its first allocation (malloc_generic's
  // first call polls):
  // a program that never allocates (/bin/true, run in a server's
  // environment) has nothing to publish, and creating the thread made it
  // allocate (pthread_create's calloc: an arena, a segment): 0.13 ms of CPU
  // per exec of /bin/true, +13%. A program that allocates before (a
  // library's constructor) has its segment: the thread starts now.
  if (!purging && stats_global.segments.current.load(std::memory_order_relaxed) == 0) {
    int expected = 0;
    purger_state.compare_exchange_strong(expected, 2);
    return;
  }
  int expected = 0;
  if (!purger_state.compare_exchange_strong(expected, 1)) return;
  if (!purger_spawn()) purger_state.store(0);
}

void purger_after_fork() noexcept {
  int expected = 1;
  purger_state.compare_exchange_strong(expected, 2);  // the child has no purge thread
}

void purger_poll() noexcept {
  if (purger_state.load(std::memory_order_relaxed) != 2) return;
  int expected = 2;
  if (!purger_state.compare_exchange_strong(expected, 1)) return;
  if (!purger_spawn()) purger_state.store(0);
}

bool purger_running() noexcept { return purger_state.load(std::memory_order_relaxed) == 1; }

uint32_t purger_threads_entered() noexcept { return purger_entered.load(std::memory_order_acquire); }

}  // namespace mi
