// glibc_introspection.h: glibc's malloc introspection from our own figures.
//
// Owns: what mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt and
// malloc_trim return when the allocator replaces glibc's malloc (the symbols
// themselves are in override/override.cpp). Every figure comes from
// api/stats_snapshot.h, as the statistics report's do. glibc's fields mean:
//
//   arena     committed bytes, blocks over 2 MiB excepted (glibc: the bytes
//             its arenas got from the OS)
//   ordblks   free blocks in pages in use (blocks a malloc of their size gets
//             without more memory; glibc: free chunks)
//   smblks    0 (glibc: fastbin chunks; there are none here)
//   hblks     live blocks over 2 MiB, each in a segment of its own (glibc:
//             chunks it mmapped)
//   hblkhd    committed bytes of those segments (glibc: mmapped bytes)
//   usmblks   0 (as in glibc)
//   fsmblks   0 (no fastbins)
//   uordblks  bytes of the program's live blocks (their block sizes), blocks
//             over 2 MiB excepted
//   fordblks  arena - uordblks: free blocks, free pages not purged yet,
//             segment headers and the allocator's metadata
//   keepcost  committed bytes free and waiting for their purge: what
//             malloc_trim gives back now
// so that, as glibc documents, uordblks + fordblks == arena, and arena +
// hblkhd is every committed byte (mi_numa_stats(MI_NUMA_STATS_TOTAL)).
//
// No allocation, except inside fwrite for malloc_info's FILE* (with no lock
// of ours held).
#pragma once

#include <malloc.h>
#include <stdio.h>

namespace mi {

struct mallinfo2 glibc_mallinfo2() noexcept;
// The same, each field saturated at INT_MAX (glibc's old struct has ints).
struct mallinfo glibc_mallinfo() noexcept;
// glibc's report on stderr ("Arena N:" per NUMA node, then the total), one write.
void glibc_malloc_stats() noexcept;
// glibc's XML document (<malloc version="1">): a <heap> per NUMA node (and
// the segments outside arenas), free and live blocks per size class, the
// totals. options must be 0 (else EINVAL). Returns 0, or -1 with errno.
int glibc_malloc_info(int options, FILE* fp) noexcept;
// Applies M_TRIM_THRESHOLD (returns 1); 0 for every other parameter, which
// this allocator has no equivalent of.
int glibc_mallopt(int param, int value) noexcept;
// Purges all free memory now; 1 if some was given back to the OS, else 0.
int glibc_malloc_trim(size_t pad) noexcept;

}  // namespace mi
