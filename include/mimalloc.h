/* mimalloc-numa: public C API, source-compatible with mimalloc 2.1's `mimalloc.h`.

   A program or binding written against mimalloc 2.x compiles against this
   header unchanged and links against libmimalloc-numa instead.  The names,
   signatures, enum names and enum values below follow mimalloc's documented
   API (https://microsoft.github.io/mimalloc/); extensions that mimalloc does
   not have live in <mimalloc-numa.h>.

   Written for this project; not copied from mimalloc's sources. */
#ifndef MIMALLOC_H
#define MIMALLOC_H

/* The mimalloc API level this header provides: 2.1 (major*100 + minor*10 + patch). */
#define MI_MALLOC_VERSION 217

/* ---------------------------------------------------------------------------
   Compiler attributes (same macro names as mimalloc, since some programs use them)
--------------------------------------------------------------------------- */
#ifdef __cplusplus
#define mi_attr_noexcept noexcept
#else
#define mi_attr_noexcept
#endif

#if defined(__cplusplus) && (__cplusplus >= 201703L)
#define mi_decl_nodiscard [[nodiscard]]
#elif defined(__GNUC__) || defined(__clang__)
#define mi_decl_nodiscard __attribute__((warn_unused_result))
#else
#define mi_decl_nodiscard
#endif

#if defined(__GNUC__) || defined(__clang__)
#define mi_cdecl
#define mi_decl_export __attribute__((visibility("default")))
#define mi_decl_restrict
#define mi_attr_malloc __attribute__((malloc))
#define mi_attr_alloc_size(s) __attribute__((alloc_size(s)))
#define mi_attr_alloc_size2(s1, s2) __attribute__((alloc_size(s1, s2)))
#define mi_attr_alloc_align(p) __attribute__((alloc_align(p)))
#else
#define mi_cdecl
#define mi_decl_export
#define mi_decl_restrict
#define mi_attr_malloc
#define mi_attr_alloc_size(s)
#define mi_attr_alloc_size2(s1, s2)
#define mi_attr_alloc_align(p)
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
   Standard malloc interface
--------------------------------------------------------------------------- */
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_calloc(size_t count,
                                                                  size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(1, 2);
mi_decl_nodiscard mi_decl_export void* mi_realloc(void* p, size_t newsize) mi_attr_noexcept mi_attr_alloc_size(2);
mi_decl_export void* mi_expand(void* p, size_t newsize) mi_attr_noexcept mi_attr_alloc_size(2);

mi_decl_export void mi_free(void* p) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export mi_decl_restrict char* mi_strdup(const char* s) mi_attr_noexcept mi_attr_malloc;
mi_decl_nodiscard mi_decl_export mi_decl_restrict char* mi_strndup(const char* s,
                                                                   size_t n) mi_attr_noexcept mi_attr_malloc;
/* Not mi_attr_malloc: with a buffer it returns that buffer, and a compiler told
   the result aliases nothing folds `mi_realpath(f, buf) == buf` to false
   (clang does; later mimalloc versions dropped the attribute too). */
mi_decl_nodiscard mi_decl_export char* mi_realpath(const char* fname, char* resolved_name) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Extended functionality
--------------------------------------------------------------------------- */
#define MI_SMALL_WSIZE_MAX (128)
#define MI_SMALL_SIZE_MAX (MI_SMALL_WSIZE_MAX * sizeof(void*))

mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc_small(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc_small(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);

mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_mallocn(size_t count,
                                                                   size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(1, 2);
mi_decl_nodiscard mi_decl_export void* mi_reallocn(void* p, size_t count, size_t size) mi_attr_noexcept
    mi_attr_alloc_size2(2, 3);
mi_decl_nodiscard mi_decl_export void* mi_reallocf(void* p, size_t newsize) mi_attr_noexcept mi_attr_alloc_size(2);

mi_decl_nodiscard mi_decl_export size_t mi_usable_size(const void* p) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export size_t mi_good_size(size_t size) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Internals: callbacks, collection, statistics, threads
--------------------------------------------------------------------------- */
typedef void(mi_cdecl mi_deferred_free_fun)(bool force, unsigned long long heartbeat, void* arg);
mi_decl_export void mi_register_deferred_free(mi_deferred_free_fun* deferred_free, void* arg) mi_attr_noexcept;

typedef void(mi_cdecl mi_output_fun)(const char* msg, void* arg);
mi_decl_export void mi_register_output(mi_output_fun* out, void* arg) mi_attr_noexcept;

typedef void(mi_cdecl mi_error_fun)(int err, void* arg);
mi_decl_export void mi_register_error(mi_error_fun* fun, void* arg);

mi_decl_export void mi_collect(bool force) mi_attr_noexcept;
mi_decl_export int mi_version(void) mi_attr_noexcept;
mi_decl_export void mi_stats_reset(void) mi_attr_noexcept;
mi_decl_export void mi_stats_merge(void) mi_attr_noexcept;
mi_decl_export void mi_stats_print(void* out)
    mi_attr_noexcept; /* `out` is ignored (backward compatibility); pass NULL */
mi_decl_export void mi_stats_print_out(mi_output_fun* out, void* arg) mi_attr_noexcept;
mi_decl_export void mi_options_print(void) mi_attr_noexcept;

mi_decl_export void mi_process_init(void) mi_attr_noexcept;
mi_decl_export void mi_thread_init(void) mi_attr_noexcept;
mi_decl_export void mi_thread_done(void) mi_attr_noexcept;
mi_decl_export void mi_thread_stats_print_out(mi_output_fun* out, void* arg) mi_attr_noexcept;

mi_decl_export void mi_process_info(size_t* elapsed_msecs, size_t* user_msecs, size_t* system_msecs,
                                    size_t* current_rss, size_t* peak_rss, size_t* current_commit, size_t* peak_commit,
                                    size_t* page_faults) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Aligned allocation.  `alignment` follows `size` (unlike posix_memalign).
--------------------------------------------------------------------------- */
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc_aligned(size_t size, size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1) mi_attr_alloc_align(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc_aligned_at(
    size_t size, size_t alignment, size_t offset) mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc_aligned(size_t size, size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1) mi_attr_alloc_align(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc_aligned_at(
    size_t size, size_t alignment, size_t offset) mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_calloc_aligned(size_t count, size_t size, size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size2(1, 2) mi_attr_alloc_align(3);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_calloc_aligned_at(size_t count, size_t size,
                                                                             size_t alignment, size_t offset)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size2(1, 2);
mi_decl_nodiscard mi_decl_export void* mi_realloc_aligned(void* p, size_t newsize, size_t alignment) mi_attr_noexcept
    mi_attr_alloc_size(2) mi_attr_alloc_align(3);
mi_decl_nodiscard mi_decl_export void* mi_realloc_aligned_at(void* p, size_t newsize, size_t alignment,
                                                             size_t offset) mi_attr_noexcept mi_attr_alloc_size(2);

/* ---------------------------------------------------------------------------
   Heaps: first-class, but a heap allocates only on the thread that created it.
   Any thread may free a block of any heap.
--------------------------------------------------------------------------- */
struct mi_heap_s;
typedef struct mi_heap_s mi_heap_t;

mi_decl_nodiscard mi_decl_export mi_heap_t* mi_heap_new(void);
mi_decl_export void mi_heap_delete(mi_heap_t* heap);
mi_decl_export void mi_heap_destroy(mi_heap_t* heap);
mi_decl_export mi_heap_t* mi_heap_set_default(mi_heap_t* heap);
mi_decl_export mi_heap_t* mi_heap_get_default(void);
mi_decl_export mi_heap_t* mi_heap_get_backing(void);
mi_decl_export void mi_heap_collect(mi_heap_t* heap, bool force) mi_attr_noexcept;

mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_malloc(mi_heap_t* heap,
                                                                       size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_zalloc(mi_heap_t* heap,
                                                                       size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_calloc(mi_heap_t* heap, size_t count,
                                                                       size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(2, 3);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_mallocn(mi_heap_t* heap, size_t count,
                                                                        size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(2, 3);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_malloc_small(mi_heap_t* heap, size_t size)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_zalloc_small(mi_heap_t* heap, size_t size)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2);

mi_decl_nodiscard mi_decl_export void* mi_heap_realloc(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept
    mi_attr_alloc_size(3);
mi_decl_nodiscard mi_decl_export void* mi_heap_reallocn(mi_heap_t* heap, void* p, size_t count,
                                                        size_t size) mi_attr_noexcept mi_attr_alloc_size2(3, 4);
mi_decl_nodiscard mi_decl_export void* mi_heap_reallocf(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept
    mi_attr_alloc_size(3);

mi_decl_nodiscard mi_decl_export mi_decl_restrict char* mi_heap_strdup(mi_heap_t* heap,
                                                                       const char* s) mi_attr_noexcept mi_attr_malloc;
mi_decl_nodiscard mi_decl_export mi_decl_restrict char* mi_heap_strndup(mi_heap_t* heap, const char* s,
                                                                        size_t n) mi_attr_noexcept mi_attr_malloc;
mi_decl_nodiscard mi_decl_export char* mi_heap_realpath(mi_heap_t* heap, const char* fname,
                                                        char* resolved_name) mi_attr_noexcept; /* (see mi_realpath) */

mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_malloc_aligned(mi_heap_t* heap, size_t size,
                                                                               size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2) mi_attr_alloc_align(3);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_malloc_aligned_at(mi_heap_t* heap, size_t size,
                                                                                  size_t alignment, size_t offset)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_zalloc_aligned(mi_heap_t* heap, size_t size,
                                                                               size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2) mi_attr_alloc_align(3);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_zalloc_aligned_at(mi_heap_t* heap, size_t size,
                                                                                  size_t alignment, size_t offset)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_calloc_aligned(mi_heap_t* heap, size_t count,
                                                                               size_t size, size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size2(2, 3) mi_attr_alloc_align(4);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_calloc_aligned_at(
    mi_heap_t* heap, size_t count, size_t size, size_t alignment, size_t offset) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(2, 3);
mi_decl_nodiscard mi_decl_export void* mi_heap_realloc_aligned(mi_heap_t* heap, void* p, size_t newsize,
                                                               size_t alignment) mi_attr_noexcept mi_attr_alloc_size(3)
    mi_attr_alloc_align(4);
mi_decl_nodiscard mi_decl_export void* mi_heap_realloc_aligned_at(mi_heap_t* heap, void* p, size_t newsize,
                                                                  size_t alignment, size_t offset) mi_attr_noexcept
    mi_attr_alloc_size(3);

/* ---------------------------------------------------------------------------
   Zero-initialised re-allocation.  Only valid on blocks that were themselves
   allocated zero-initialised (mi_calloc, mi_zalloc, ...).
--------------------------------------------------------------------------- */
mi_decl_nodiscard mi_decl_export void* mi_rezalloc(void* p, size_t newsize) mi_attr_noexcept mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export void* mi_recalloc(void* p, size_t newcount, size_t size) mi_attr_noexcept
    mi_attr_alloc_size2(2, 3);

mi_decl_nodiscard mi_decl_export void* mi_rezalloc_aligned(void* p, size_t newsize, size_t alignment) mi_attr_noexcept
    mi_attr_alloc_size(2) mi_attr_alloc_align(3);
mi_decl_nodiscard mi_decl_export void* mi_rezalloc_aligned_at(void* p, size_t newsize, size_t alignment,
                                                              size_t offset) mi_attr_noexcept mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export void* mi_recalloc_aligned(void* p, size_t newcount, size_t size,
                                                           size_t alignment) mi_attr_noexcept mi_attr_alloc_size2(2, 3)
    mi_attr_alloc_align(4);
mi_decl_nodiscard mi_decl_export void* mi_recalloc_aligned_at(void* p, size_t newcount, size_t size, size_t alignment,
                                                              size_t offset) mi_attr_noexcept mi_attr_alloc_size2(2, 3);

mi_decl_nodiscard mi_decl_export void* mi_heap_rezalloc(mi_heap_t* heap, void* p, size_t newsize) mi_attr_noexcept
    mi_attr_alloc_size(3);
mi_decl_nodiscard mi_decl_export void* mi_heap_recalloc(mi_heap_t* heap, void* p, size_t newcount,
                                                        size_t size) mi_attr_noexcept mi_attr_alloc_size2(3, 4);

mi_decl_nodiscard mi_decl_export void* mi_heap_rezalloc_aligned(mi_heap_t* heap, void* p, size_t newsize,
                                                                size_t alignment) mi_attr_noexcept mi_attr_alloc_size(3)
    mi_attr_alloc_align(4);
mi_decl_nodiscard mi_decl_export void* mi_heap_rezalloc_aligned_at(mi_heap_t* heap, void* p, size_t newsize,
                                                                   size_t alignment, size_t offset) mi_attr_noexcept
    mi_attr_alloc_size(3);
mi_decl_nodiscard mi_decl_export void* mi_heap_recalloc_aligned(mi_heap_t* heap, void* p, size_t newcount, size_t size,
                                                                size_t alignment) mi_attr_noexcept
    mi_attr_alloc_size2(3, 4) mi_attr_alloc_align(5);
mi_decl_nodiscard mi_decl_export void* mi_heap_recalloc_aligned_at(mi_heap_t* heap, void* p, size_t newcount,
                                                                   size_t size, size_t alignment,
                                                                   size_t offset) mi_attr_noexcept
    mi_attr_alloc_size2(3, 4);

/* ---------------------------------------------------------------------------
   Analysis
--------------------------------------------------------------------------- */
mi_decl_export bool mi_heap_contains_block(mi_heap_t* heap, const void* p);
mi_decl_export bool mi_heap_check_owned(mi_heap_t* heap, const void* p);
mi_decl_export bool mi_check_owned(const void* p);

/* An area of heap space holding blocks of a single size. */
typedef struct mi_heap_area_s {
  void* blocks;           /* start of the area containing heap blocks */
  size_t reserved;        /* bytes reserved for this area (virtual) */
  size_t committed;       /* current available bytes for this area */
  size_t used;            /* number of allocated blocks */
  size_t block_size;      /* size in bytes of each block */
  size_t full_block_size; /* size in bytes of a full block including padding and metadata */
  int heap_tag;           /* heap tag associated with this area */
} mi_heap_area_t;

typedef bool(mi_cdecl mi_block_visit_fun)(const mi_heap_t* heap, const mi_heap_area_t* area, void* block,
                                          size_t block_size, void* arg);

mi_decl_export bool mi_heap_visit_blocks(const mi_heap_t* heap, bool visit_blocks, mi_block_visit_fun* visitor,
                                         void* arg);

/* Experimental / advanced */
mi_decl_nodiscard mi_decl_export bool mi_is_in_heap_region(const void* p) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export bool mi_is_redirected(void) mi_attr_noexcept;

mi_decl_export int mi_reserve_huge_os_pages_interleave(size_t pages, size_t numa_nodes,
                                                       size_t timeout_msecs) mi_attr_noexcept;
mi_decl_export int mi_reserve_huge_os_pages_at(size_t pages, int numa_node, size_t timeout_msecs) mi_attr_noexcept;

mi_decl_export int mi_reserve_os_memory(size_t size, bool commit, bool allow_large) mi_attr_noexcept;
mi_decl_export bool mi_manage_os_memory(void* start, size_t size, bool is_committed, bool is_large, bool is_zero,
                                        int numa_node) mi_attr_noexcept;

mi_decl_export void mi_debug_show_arenas(bool show_inuse, bool show_abandoned, bool show_purge) mi_attr_noexcept;

/* Arenas with an identity, and heaps that allocate only from one arena. */
typedef int mi_arena_id_t;
mi_decl_export void* mi_arena_area(mi_arena_id_t arena_id, size_t* size);
mi_decl_export int mi_reserve_huge_os_pages_at_ex(size_t pages, int numa_node, size_t timeout_msecs, bool exclusive,
                                                  mi_arena_id_t* arena_id) mi_attr_noexcept;
mi_decl_export int mi_reserve_os_memory_ex(size_t size, bool commit, bool allow_large, bool exclusive,
                                           mi_arena_id_t* arena_id) mi_attr_noexcept;
mi_decl_export bool mi_manage_os_memory_ex(void* start, size_t size, bool is_committed, bool is_large, bool is_zero,
                                           int numa_node, bool exclusive, mi_arena_id_t* arena_id) mi_attr_noexcept;

/* A heap that allocates only in the given arena. */
mi_decl_nodiscard mi_decl_export mi_heap_t* mi_heap_new_in_arena(mi_arena_id_t arena_id);

/* A heap with a tag (blocks of different tags never share a page), optionally
   destroyable, optionally tied to an arena (0 = any). */
mi_decl_nodiscard mi_decl_export mi_heap_t* mi_heap_new_ex(int heap_tag, bool allow_destroy, mi_arena_id_t arena_id);

/* Deprecated */
mi_decl_export int mi_reserve_huge_os_pages(size_t pages, double max_secs, size_t* pages_reserved) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Typed allocation: a block for one object of type `tp` (or `n` of them),
   returned as a `tp*`.  Each is one call of the function it names with
   sizeof(tp); the counted forms (calloc, mallocn, reallocn, recalloc) check
   n * sizeof(tp) for overflow as those functions do.  `p` and `hp` are
   evaluated once.
--------------------------------------------------------------------------- */
#define mi_malloc_tp(tp) ((tp*)mi_malloc(sizeof(tp)))
#define mi_zalloc_tp(tp) ((tp*)mi_zalloc(sizeof(tp)))
#define mi_calloc_tp(tp, n) ((tp*)mi_calloc((n), sizeof(tp)))
#define mi_mallocn_tp(tp, n) ((tp*)mi_mallocn((n), sizeof(tp)))
#define mi_reallocn_tp(p, tp, n) ((tp*)mi_reallocn((p), (n), sizeof(tp)))
#define mi_recalloc_tp(p, tp, n) ((tp*)mi_recalloc((p), (n), sizeof(tp)))

#define mi_heap_malloc_tp(hp, tp) ((tp*)mi_heap_malloc((hp), sizeof(tp)))
#define mi_heap_zalloc_tp(hp, tp) ((tp*)mi_heap_zalloc((hp), sizeof(tp)))
#define mi_heap_calloc_tp(hp, tp, n) ((tp*)mi_heap_calloc((hp), (n), sizeof(tp)))
#define mi_heap_mallocn_tp(hp, tp, n) ((tp*)mi_heap_mallocn((hp), (n), sizeof(tp)))
#define mi_heap_reallocn_tp(hp, p, tp, n) ((tp*)mi_heap_reallocn((hp), (p), (n), sizeof(tp)))
#define mi_heap_recalloc_tp(hp, p, tp, n) ((tp*)mi_heap_recalloc((hp), (p), (n), sizeof(tp)))

/* ---------------------------------------------------------------------------
   Options.  Names and values follow mimalloc 2.1; our own options follow its
   last option.  Every option is also read from MIMALLOC_<NAME> and from the
   config file (see mimalloc-numa.toml(5)).
--------------------------------------------------------------------------- */
typedef enum mi_option_e {
  /* stable options */
  mi_option_show_errors, /* print error messages */
  mi_option_show_stats,  /* print statistics at exit: 1 = the text report, 2 = JSON (mimalloc-numa) */
  mi_option_verbose,     /* print verbose messages */
  /* advanced options */
  mi_option_eager_commit,             /* commit segments eagerly (after eager_commit_delay segments) */
  mi_option_arena_eager_commit,       /* commit arenas eagerly: 0 no, 1 yes, 2 only where the OS overcommits */
  mi_option_purge_decommits,          /* purge decommits (1) or resets (0) */
  mi_option_allow_large_os_pages,     /* allow 2 MiB OS pages */
  mi_option_reserve_huge_os_pages,    /* reserve N 1 GiB pages at start-up, interleaved over the NUMA nodes */
  mi_option_reserve_huge_os_pages_at, /* reserve the huge pages on this NUMA node only (-1 = interleave) */
  mi_option_reserve_os_memory,        /* reserve this much OS memory (KiB) in an arena at start-up */
  mi_option_deprecated_segment_cache,
  mi_option_deprecated_page_reset,
  mi_option_abandoned_page_purge, /* purge a thread's delayed purges when it exits */
  mi_option_deprecated_segment_reset,
  mi_option_eager_commit_delay,        /* the first N segments of a thread are committed page by page */
  mi_option_purge_delay,               /* purge unused memory after N ms (0 = at once, -1 = never) */
  mi_option_use_numa_nodes,            /* use at most N NUMA nodes (0 = all) */
  mi_option_disallow_os_alloc,         /* 1 = never take fresh memory from the OS, only reserved arenas */
  mi_option_os_tag,                    /* tag for OS memory (macOS only; accepted and ignored) */
  mi_option_max_errors,                /* print at most N error messages */
  mi_option_max_warnings,              /* print at most N warnings */
  mi_option_max_segment_reclaim,       /* reclaim at most N% of the abandoned segments per try */
  mi_option_destroy_on_exit,           /* release all memory at process exit */
  mi_option_arena_reserve,             /* size (KiB) of each new arena reservation */
  mi_option_arena_purge_mult,          /* purge_delay multiplier for arena memory */
  mi_option_purge_extend_delay,        /* extend a pending purge by this many ms when more is freed */
  mi_option_abandoned_reclaim_on_free, /* a free into an abandoned segment may reclaim it */
  mi_option_disallow_arena_alloc,      /* 1 = do not allocate from arenas (except by arena id) */
  mi_option_retry_on_oom,              /* retry for N ms on out-of-memory (Windows only; accepted) */
  mi_option_visit_abandoned,           /* mimalloc's; does nothing here (no call visits abandoned segments' blocks) */
  mi_option_guarded_min,               /* guarded builds only (accepted and ignored) */
  mi_option_guarded_max,
  mi_option_guarded_precise,
  mi_option_guarded_sample_rate,
  mi_option_guarded_sample_seed,
  mi_option_target_segments_per_thread, /* collect a thread's segments beyond this number (0 = off) */
  mi_option_generic_collect,            /* collect the heap every N generic allocations */
  /* mimalloc-numa options */
  mi_option_purge_thread, /* a background thread purges memory of idle processes */
  mi_option_allow_thp,    /* advise transparent huge pages (MADV_HUGEPAGE) on arenas */
  mi_option_numa_bind,    /* 0 = none, 1 = preferred, 2 = strict (MPOL_BIND) */
  mi_option_stats_file,   /* a file for the statistics at exit (a string: mimalloc-numa.h, mi_option_set_string) */
  mi_option_secure, /* guard pages, random free-list order, free lists checked when collected, abort on detected misuse */
  mi_option_stats_publish,          /* keep live statistics in a file mapped in memory (mimalloc-numa-stats.h) */
  mi_option_stats_publish_interval, /* ... refreshed every N milliseconds */
  mi_option_cross_thread_cache,     /* KiB of other threads' freed blocks a thread may keep for its allocations */
  _mi_option_last,
  /* legacy option names (mimalloc 2.0 and earlier) */
  mi_option_large_os_pages = mi_option_allow_large_os_pages,
  mi_option_eager_region_commit = mi_option_arena_eager_commit,
  mi_option_reset_decommits = mi_option_purge_decommits,
  mi_option_reset_delay = mi_option_purge_delay,
  mi_option_decommit_delay = mi_option_purge_delay,
  mi_option_abandoned_page_reset = mi_option_abandoned_page_purge,
  mi_option_abandoned_page_decommit = mi_option_abandoned_page_purge,
  mi_option_limit_os_alloc = mi_option_disallow_os_alloc,
  mi_option_segment_cache = mi_option_deprecated_segment_cache,
  mi_option_page_reset = mi_option_deprecated_page_reset,
  mi_option_segment_reset = mi_option_deprecated_segment_reset,
  mi_option_decommit_extend_delay = mi_option_purge_extend_delay
} mi_option_t;

mi_decl_nodiscard mi_decl_export bool mi_option_is_enabled(mi_option_t option);
mi_decl_export void mi_option_enable(mi_option_t option);
mi_decl_export void mi_option_disable(mi_option_t option);
mi_decl_export void mi_option_set_enabled(mi_option_t option, bool enable);
mi_decl_export void mi_option_set_enabled_default(mi_option_t option, bool enable);

mi_decl_nodiscard mi_decl_export long mi_option_get(mi_option_t option);
mi_decl_nodiscard mi_decl_export long mi_option_get_clamp(mi_option_t option, long min, long max);
mi_decl_nodiscard mi_decl_export size_t mi_option_get_size(mi_option_t option);
mi_decl_export void mi_option_set(mi_option_t option, long value);
mi_decl_export void mi_option_set_default(mi_option_t option, long value);

/* ---------------------------------------------------------------------------
   POSIX, Unix and C11 wrappers (the mi_ prefixed forms; the unprefixed
   standard names are exported by the shared library itself).
--------------------------------------------------------------------------- */
mi_decl_export void mi_cfree(void* p) mi_attr_noexcept;
mi_decl_export void* mi__expand(void* p, size_t newsize) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export size_t mi_malloc_size(const void* p) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export size_t mi_malloc_good_size(size_t size) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export size_t mi_malloc_usable_size(const void* p) mi_attr_noexcept;

mi_decl_export int mi_posix_memalign(void** p, size_t alignment, size_t size) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_memalign(size_t alignment,
                                                                    size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(2) mi_attr_alloc_align(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_valloc(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_pvalloc(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_aligned_alloc(size_t alignment,
                                                                         size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(2) mi_attr_alloc_align(1);

mi_decl_nodiscard mi_decl_export void* mi_reallocarray(void* p, size_t count, size_t size) mi_attr_noexcept
    mi_attr_alloc_size2(2, 3);
mi_decl_nodiscard mi_decl_export int mi_reallocarr(void* p, size_t count, size_t size) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export void* mi_aligned_recalloc(void* p, size_t newcount, size_t size,
                                                           size_t alignment) mi_attr_noexcept;
mi_decl_nodiscard mi_decl_export void* mi_aligned_offset_recalloc(void* p, size_t newcount, size_t size,
                                                                  size_t alignment, size_t offset) mi_attr_noexcept;

mi_decl_nodiscard mi_decl_export mi_decl_restrict unsigned short* mi_wcsdup(const unsigned short* s)
    mi_attr_noexcept mi_attr_malloc;
mi_decl_nodiscard mi_decl_export mi_decl_restrict unsigned char* mi_mbsdup(const unsigned char* s)
    mi_attr_noexcept mi_attr_malloc;
mi_decl_export int mi_dupenv_s(char** buf, size_t* size, const char* name) mi_attr_noexcept;
mi_decl_export int mi_wdupenv_s(unsigned short** buf, size_t* size, const unsigned short* name) mi_attr_noexcept;

mi_decl_export void mi_free_size(void* p, size_t size) mi_attr_noexcept;
mi_decl_export void mi_free_size_aligned(void* p, size_t size, size_t alignment) mi_attr_noexcept;
mi_decl_export void mi_free_aligned(void* p, size_t alignment) mi_attr_noexcept;

/* The C++ allocation forms: mi_new raises std::bad_alloc (after trying the
   installed std::new_handler) where mi_malloc returns NULL. */
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_new(size_t size) mi_attr_malloc mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_new_aligned(size_t size, size_t alignment) mi_attr_malloc
    mi_attr_alloc_size(1) mi_attr_alloc_align(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_new_nothrow(size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_new_aligned_nothrow(size_t size, size_t alignment)
    mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1) mi_attr_alloc_align(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_new_n(size_t count, size_t size) mi_attr_malloc
    mi_attr_alloc_size2(1, 2);
mi_decl_nodiscard mi_decl_export void* mi_new_realloc(void* p, size_t newsize) mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export void* mi_new_reallocn(void* p, size_t newcount, size_t size) mi_attr_alloc_size2(2, 3);

mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_alloc_new(mi_heap_t* heap, size_t size) mi_attr_malloc
    mi_attr_alloc_size(2);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_heap_alloc_new_n(mi_heap_t* heap, size_t count,
                                                                            size_t size) mi_attr_malloc
    mi_attr_alloc_size2(2, 3);

#ifdef __cplusplus
}
#endif

/* ---------------------------------------------------------------------------
   C++ STL allocators
--------------------------------------------------------------------------- */
#ifdef __cplusplus

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

/* mi_stl_allocator<T>: allocates from the calling thread's default heap. */
template <class T>
struct mi_stl_allocator {
  typedef T value_type;
  typedef std::size_t size_type;
  typedef std::ptrdiff_t difference_type;
  typedef value_type& reference;
  typedef value_type const& const_reference;
  typedef value_type* pointer;
  typedef value_type const* const_pointer;
  template <class U>
  struct rebind {
    typedef mi_stl_allocator<U> other;
  };

  typedef std::true_type propagate_on_container_copy_assignment;
  typedef std::true_type propagate_on_container_move_assignment;
  typedef std::true_type propagate_on_container_swap;
  typedef std::true_type is_always_equal;

  mi_stl_allocator() mi_attr_noexcept = default;
  mi_stl_allocator(const mi_stl_allocator&) mi_attr_noexcept = default;
  template <class U>
  mi_stl_allocator(const mi_stl_allocator<U>&) mi_attr_noexcept {}
  mi_stl_allocator select_on_container_copy_construction() const { return *this; }

  void deallocate(T* p, size_type) { mi_free(p); }
  mi_decl_nodiscard T* allocate(size_type count) { return static_cast<T*>(mi_new_n(count, sizeof(T))); }
  mi_decl_nodiscard T* allocate(size_type count, const void*) { return allocate(count); }

  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (p) U(std::forward<Args>(args)...);
  }
  template <class U>
  void destroy(U* p) mi_attr_noexcept {
    p->~U();
  }

  size_type max_size() const mi_attr_noexcept {
    return std::numeric_limits<difference_type>::max() / sizeof(value_type);
  }
  pointer address(reference x) const { return &x; }
  const_pointer address(const_reference x) const { return &x; }
};

template <class T1, class T2>
bool operator==(const mi_stl_allocator<T1>&, const mi_stl_allocator<T2>&) mi_attr_noexcept {
  return true;
}
template <class T1, class T2>
bool operator!=(const mi_stl_allocator<T1>&, const mi_stl_allocator<T2>&) mi_attr_noexcept {
  return false;
}

/* The heap allocators below exist (C++11 and later: they share a heap through std::shared_ptr). */
#define MI_HAS_HEAP_STL_ALLOCATOR 1

#include <memory> /* std::shared_ptr */

/* Common base of the heap allocators: shares ownership of one heap. */
template <class T, bool _mi_destroy>
struct _mi_heap_stl_allocator_common {
  typedef T value_type;
  typedef std::size_t size_type;
  typedef std::ptrdiff_t difference_type;
  typedef value_type& reference;
  typedef value_type const& const_reference;
  typedef value_type* pointer;
  typedef value_type const* const_pointer;

  typedef std::true_type propagate_on_container_copy_assignment;
  typedef std::true_type propagate_on_container_move_assignment;
  typedef std::true_type propagate_on_container_swap;

  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (p) U(std::forward<Args>(args)...);
  }
  template <class U>
  void destroy(U* p) mi_attr_noexcept {
    p->~U();
  }
  size_type max_size() const mi_attr_noexcept {
    return std::numeric_limits<difference_type>::max() / sizeof(value_type);
  }
  pointer address(reference x) const { return &x; }
  const_pointer address(const_reference x) const { return &x; }

  void collect(bool force) { mi_heap_collect(this->heap.get(), force); }
  template <class U>
  bool is_equal(const _mi_heap_stl_allocator_common<U, _mi_destroy>& x) const {
    return (this->heap == x.heap);
  }

 protected:
  std::shared_ptr<mi_heap_t> heap;
  template <class U, bool D>
  friend struct _mi_heap_stl_allocator_common;

  _mi_heap_stl_allocator_common() {
    mi_heap_t* hp = mi_heap_new();
    this->heap.reset(hp, (_mi_destroy ? &heap_destroy : &heap_delete));
  }
  _mi_heap_stl_allocator_common(mi_heap_t* hp) : heap(hp, [](mi_heap_t*) {}) {} /* borrowed heap: not owned */
  _mi_heap_stl_allocator_common(const _mi_heap_stl_allocator_common& x) mi_attr_noexcept : heap(x.heap) {}
  template <class U>
  _mi_heap_stl_allocator_common(const _mi_heap_stl_allocator_common<U, _mi_destroy>& x) mi_attr_noexcept
      : heap(x.heap) {}

 private:
  static void heap_delete(mi_heap_t* hp) {
    if (hp != NULL) mi_heap_delete(hp);
  }
  static void heap_destroy(mi_heap_t* hp) {
    if (hp != NULL) mi_heap_destroy(hp);
  }
};

/* mi_heap_stl_allocator<T>: allocates from its own heap; the heap is deleted
   (live blocks migrate to the backing heap) when the last copy goes. */
template <class T>
struct mi_heap_stl_allocator : public _mi_heap_stl_allocator_common<T, false> {
  using typename _mi_heap_stl_allocator_common<T, false>::size_type;
  mi_heap_stl_allocator() : _mi_heap_stl_allocator_common<T, false>() {}
  mi_heap_stl_allocator(mi_heap_t* hp) : _mi_heap_stl_allocator_common<T, false>(hp) {}
  template <class U>
  mi_heap_stl_allocator(const mi_heap_stl_allocator<U>& x) mi_attr_noexcept
      : _mi_heap_stl_allocator_common<T, false>(x) {}

  mi_heap_stl_allocator select_on_container_copy_construction() const { return *this; }
  void deallocate(T* p, size_type) { mi_free(p); }
  template <class U>
  struct rebind {
    typedef mi_heap_stl_allocator<U> other;
  };
  mi_decl_nodiscard T* allocate(size_type count) {
    return static_cast<T*>(mi_heap_alloc_new_n(this->heap.get(), count, sizeof(T)));
  }
};

template <class T1, class T2>
bool operator==(const mi_heap_stl_allocator<T1>& x, const mi_heap_stl_allocator<T2>& y) mi_attr_noexcept {
  return (x.is_equal(y));
}
template <class T1, class T2>
bool operator!=(const mi_heap_stl_allocator<T1>& x, const mi_heap_stl_allocator<T2>& y) mi_attr_noexcept {
  return (!x.is_equal(y));
}

/* mi_heap_destroy_stl_allocator<T>: like mi_heap_stl_allocator, but the heap
   is destroyed (all its blocks freed at once) when the last copy goes;
   deallocate does nothing. */
template <class T>
struct mi_heap_destroy_stl_allocator : public _mi_heap_stl_allocator_common<T, true> {
  using typename _mi_heap_stl_allocator_common<T, true>::size_type;
  mi_heap_destroy_stl_allocator() : _mi_heap_stl_allocator_common<T, true>() {}
  mi_heap_destroy_stl_allocator(mi_heap_t* hp) : _mi_heap_stl_allocator_common<T, true>(hp) {}
  template <class U>
  mi_heap_destroy_stl_allocator(const mi_heap_destroy_stl_allocator<U>& x) mi_attr_noexcept
      : _mi_heap_stl_allocator_common<T, true>(x) {}

  mi_heap_destroy_stl_allocator select_on_container_copy_construction() const { return *this; }
  void deallocate(T*, size_type) { /* blocks are released when the heap is destroyed */
  }
  template <class U>
  struct rebind {
    typedef mi_heap_destroy_stl_allocator<U> other;
  };
  mi_decl_nodiscard T* allocate(size_type count) {
    return static_cast<T*>(mi_heap_alloc_new_n(this->heap.get(), count, sizeof(T)));
  }
};

template <class T1, class T2>
bool operator==(const mi_heap_destroy_stl_allocator<T1>& x,
                const mi_heap_destroy_stl_allocator<T2>& y) mi_attr_noexcept {
  return (x.is_equal(y));
}
template <class T1, class T2>
bool operator!=(const mi_heap_destroy_stl_allocator<T1>& x,
                const mi_heap_destroy_stl_allocator<T2>& y) mi_attr_noexcept {
  return (!x.is_equal(y));
}

#endif /* __cplusplus */

#endif /* MIMALLOC_H */
