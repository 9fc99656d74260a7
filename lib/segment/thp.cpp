// thp.cpp: where transparent huge pages may back a segment.
//
// Why: with transparent huge pages "always" (Debian's default), the kernel
// backs the first touch of any 2 MiB-aligned range of an anonymous mapping
// with a whole 2 MiB page. Our arenas are large mappings cut into 4 MiB
// segments, and a segment fills from its start a page at a time: each
// segment's last partly used 2 MiB (its header alone, at first) was resident
// in full. In the 4-node guest (issue 13, gap 3) that was 25 MiB of 92 for a
// thread per node allocating 64 B - 4 MiB blocks (peak 94 MiB, 70 with huge
// pages off; glibc 68, which grows its heaps by mprotect, so the kernel
// never finds a partly used 2 MiB range it may fill).
//
// What: small, medium and large segments (blocks up to 2 MiB, many to a
// segment) are advised MADV_NOHUGEPAGE: 4 KiB faults, resident as touched.
// A huge segment (one block over 2 MiB, of the program's own size) is left
// to the kernel's policy, as glibc's mmap'ed blocks are: its 2 MiB ranges
// are the block's (the rest of its last one is made inaccessible while it
// lives, segment.cpp huge_segment_trim). The advice stays with the arena
// blocks (there is no "default" advice to go back to; MADV_HUGEPAGE would
// also turn on synchronous compaction): a huge segment later made in blocks
// a smaller segment had is backed by 4 KiB pages.
//
// The segment map (the address -> segment byte map, mostly untouched) is
// advised the same way, once.
//
// When: only where the kernel's setting is "always" (os_thp_always); with
// "madvise" or "never" no anonymous memory gets huge pages unasked, and
// the advice would cost a system call per segment for nothing. Not with
// the option allow_thp (the operator asked for MADV_HUGEPAGE on arena
// memory), nor in pinned or large-OS-page memory (already huge).
// Cost: one madvise per new segment; the arena's mapping is split where
// advised and not (adjacent advised segments merge into one mapping).
//
// A huge segment's protected tail (segment.cpp huge_segment_trim) is only
// needed where a huge page could back it: with "madvise" or "never" (and
// allow_thp off) nothing asks for one, and the protection cost an mprotect
// per huge segment made and freed and two per growth of a huge block, each
// splitting the arena's mapping (realloc_bench: 2312 of its 2368 mmap,
// mprotect and madvise calls; 0.08-0.11 s of system time, 0.02-0.03 s
// without them, at load 3-4; jemalloc 0.01).
#include "thp.h"

#include <atomic>

#include "../common/options.h"
#include "../os/os.h"
#include "segmap.h"

namespace mi {

namespace {

std::atomic<bool> segmap_advised{false};

}  // namespace

void segment_place_thp(void* start, size_t size, PageKind kind, const MemId& memid) noexcept {
  if (option_is_enabled(mi_option_allow_thp) || !os_thp_always()) return;  // (os_advise_no_thp tests it too)
  // The segment map (segmap.cpp: 32 MiB of .bss, a byte per 4 MiB of
  // address space) is written a few bytes per arena, far apart: each first
  // write faulted a 2 MiB page (up to 2 MiB per arena, i.e. per node). Once,
  // before the first segment is registered.
  if (!segmap_advised.load(std::memory_order_relaxed) && !segmap_advised.exchange(true)) {
    os_advise_no_thp(static_cast<void*>(segmap), sizeof(segmap));
  }
  if (kind == PageKind::huge || memid.is_pinned || memid.is_large) return;
  os_advise_no_thp(start, size);
}

bool thp_may_back_huge_segments() noexcept { return option_is_enabled(mi_option_allow_thp) || os_thp_always(); }

}  // namespace mi
