// purger.cpp: the background purge thread (option purge_thread).
//
// Owns: one thread that sleeps until the earliest scheduled purge is due and
// runs it: free pages of segments (whoever owns them: the purge list is
// shared) and free arena blocks, so that an idle process returns freed
// memory to the OS without waiting for its next allocation.
// fork(): the thread does not exist in the child; the child starts its own on
// its first allocator slow path after fork (purger_after_fork + purger_poll).
// Thread-safety: start/stop/poll are safe from any thread (atomics).
#include "purger.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>

#include "../common/messages.h"
#include "../common/options.h"
#include "../os/os.h"
#include "../arena/arena.h"
#include "segment.h"

namespace mi {

namespace {

std::atomic<int> purger_state{0};  // 0 = not running, 1 = running, 2 = must (re)start
pthread_t purger_thread;

void* purger_main(void*) {
  for (;;) {
    int64_t wait_ms = arenas_next_purge_in_ms();
    int64_t pages_ms = segments_next_purge_in_ms();
    if (pages_ms >= 0 && (wait_ms < 0 || pages_ms < wait_ms)) wait_ms = pages_ms;
    if (wait_ms < 0) {
      // nothing scheduled: look again after the arena purge delay
      long delay = option_get(mi_option_purge_delay);
      long mult = option_get(mi_option_arena_purge_mult);
      wait_ms = (delay > 0) ? static_cast<int64_t>(delay) * (mult > 0 ? mult : 1) : 1000;
    }
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > 1000) wait_ms = 1000;
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(wait_ms / 1000);
    ts.tv_nsec = static_cast<long>((wait_ms % 1000) * 1000000);
    nanosleep(&ts, nullptr);
    if (option_get(mi_option_purge_delay) >= 0) {
      segments_try_purge(false);  // free pages of segments threads still own
      arenas_try_purge(false, true);
    }
  }
  return nullptr;
}

bool purger_spawn() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
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
    warning_message("purge_thread: cannot start the background purge thread: %s; memory is purged on allocation "
                    "calls only",
                    errno_text(err));
    return false;
  }
  verbose_message("purge_thread: background purge thread started");
  return true;
}

}  // namespace

void purger_start() noexcept {
  if (!option_is_enabled(mi_option_purge_thread)) return;
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

}  // namespace mi
