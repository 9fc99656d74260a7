// process.cpp: the process's entry points: the library's constructor and
// destructor, mi_process_init, the fork handlers' registration, and what
// happens at exit (the statistics report, the published file removed,
// destroy_on_exit).
//
// In the api layer because they use the whole stack: the statistics report
// and the published file (api/stats_*) as much as the heaps (heap/thread.cpp:
// process_init, process_fork_*) and the arenas. The library's constructor
// stays in heap/thread.cpp, which calls mi_process_init: every program that
// allocates links that file, so that a static link (libmimalloc-numa.a,
// which brings only the objects a program refers to) brings this one, and
// its destructor, along too.
#include <pthread.h>

#include <atomic>

#include "../../include/mimalloc.h"
#include "../arena/arena.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../heap/abandoned_purge.h"
#include "../heap/heap.h"
#include "../heap/heap_stats.h"
#include "../heap/page.h"
#include "../os/os.h"
#include "../segment/purger.h"
#include "../topology/topology.h"
#include "stats_json.h"
#include "stats_publish.h"
#include "stats_report.h"

namespace mi {

namespace {

// A fork child: the heap layer's handler first (locks, the other threads'
// heaps, the statistics restarted), then the os counters' peaks and the
// published file, which start again in the child too.
void fork_child() {
  process_fork_child();
  os_counters_reset_peaks();
  stats_publish_fork_child();
}

void register_fork_handlers() {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  pthread_atfork(&process_fork_prepare, &process_fork_parent, &fork_child);
}

void process_done() {
  static std::atomic<bool> done{false};
  if (!process_is_initialized() || done.exchange(true)) return;
  Heap* heap = tls_heap_default;
  if (heap_is_initialized(heap)) {
    heap_collect(heap, Collect::normal);
    heap_stats_merge(heap->tld);
  }
  stats_publish_stop();
  // show_stats: 1 the text report (verbose too), 2 one line of JSON
  const long show = option_get(mi_option_show_stats);
  if (show == 2) stats_json_print_at_exit();
  else if (show != 0 || option_is_enabled(mi_option_verbose)) stats_print_at_exit();
  // As the process's malloc (preloaded or linked), destroy_on_exit does
  // nothing: this destructor is not the end of the process's use of our
  // memory. The C library flushes stdio's buffers (ours) after the last
  // destructor, other libraries' destructors run after ours, and other
  // threads may still run: unmapping the arenas here lost buffered output
  // and crashed programs with threads (python3 at exit, 2 runs in 3, when
  // mi_is_redirected() still compared addresses). The kernel takes
  // everything back a moment later anyway.
  if (option_is_enabled(mi_option_destroy_on_exit) && !mi_is_redirected()) {
    // A copy of the library loaded for one plug-in (dlopen, not the
    // process's malloc), unloaded now: everything goes, blocks still in
    // use too; its users promised not to touch our memory again.
    if (heap_is_initialized(heap)) heap_collect(heap, Collect::force);
    arenas_unsafe_destroy_all();
  }
}

}  // namespace

}  // namespace mi

using namespace mi;

extern "C" {

void mi_process_init(void) mi_attr_noexcept {
  process_init();
  // Once, after init, from the library constructor (or the first explicit
  // call): hwloc may allocate now.
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  topology_refine_with_hwloc();
  if (numa_binding_possible()) os_numa_init();
  register_fork_handlers();
  stats_publish_start();  // registers its task with the background thread
  purger_set_heap_purge(&heap_purge_abandoned_all_due);
  purger_start();
}

}  // extern "C"

namespace {

// Runs when the process exits (or a dlopen'ed copy is unloaded). The
// constructor is heap/thread.cpp's: see there why.
__attribute__((destructor(101))) void mi_library_unload() { process_done(); }

}  // namespace
