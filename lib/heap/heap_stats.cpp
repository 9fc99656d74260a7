// heap_stats.cpp: see heap_stats.h.
#include "heap_stats.h"

#include "../common/stats.h"
#include "page.h"

namespace mi {

void heap_stats_merge(Tld* tld) noexcept {
  if (tld == nullptr) return;
  int64_t in_free[BIN_HUGE + 1];
  heap_stats_settle(tld, in_free);
  // (the publisher reads bin_malloc meanwhile: it sees the exact count or
  // the count ahead, never less than the allocations)
  for (size_t b = 0; b <= BIN_HUGE; b++) own_counter_add(tld->stats.bin_malloc[b], -in_free[b]);
  stats_merge_thread(tld);  // adds the counters to the process's and zeroes them
  for (size_t b = 0; b <= BIN_HUGE; b++) own_counter_add(tld->stats.bin_malloc[b], in_free[b]);
}

void heap_stats_settle(Tld* tld, int64_t in_free[BIN_HUGE + 1]) noexcept {
  for (size_t b = 0; b <= BIN_HUGE; b++) in_free[b] = 0;
  for (Heap* heap = tld->heaps; heap != nullptr; heap = heap->next) {
    for (size_t bin = 0; bin < BIN_COUNT; bin++) {
      for (const Page* page = heap->pages[bin].first; page != nullptr; page = page->next) {
        if (page_counted_by_refill(page)) in_free[page->bin] += static_cast<int64_t>(page_free_count(page));
      }
    }
  }
}

}  // namespace mi
