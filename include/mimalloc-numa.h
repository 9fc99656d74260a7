/* mimalloc-numa.h: what mimalloc-numa offers beyond mimalloc's API.

   Include <mimalloc.h> for the mimalloc-compatible API; this header adds the
   project's own extensions. Every function declared here works.

   NUMA nodes are numbered 0 .. mi_numa_node_count()-1, in the order of the
   topology (hwloc's logical order; the kernel's node numbers where those are
   dense, the usual case). mi_numa_node_os_index() gives the kernel's number. */
#ifndef MIMALLOC_NUMA_H
#define MIMALLOC_NUMA_H

#include <mimalloc.h>

#define MI_NUMA_VERSION_MAJOR 0
#define MI_NUMA_VERSION_MINOR 1
#define MI_NUMA_VERSION_PATCH 0
/* major*10000 + minor*100 + patch */
#define MI_NUMA_VERSION (MI_NUMA_VERSION_MAJOR * 10000 + MI_NUMA_VERSION_MINOR * 100 + MI_NUMA_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program runs with (MI_NUMA_VERSION form). */
mi_decl_export int mi_numa_version(void) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Topology
--------------------------------------------------------------------------- */
/* NUMA nodes the allocator uses (>= 1; capped by the use_numa_nodes option). */
mi_decl_export int mi_numa_node_count(void) mi_attr_noexcept;

/* The node of the CPU the calling thread runs on (0 .. mi_numa_node_count()-1;
   refreshed every few milliseconds). */
mi_decl_export int mi_numa_current_node(void) mi_attr_noexcept;

/* The kernel's number of a node (-1 for an invalid node). */
mi_decl_export int mi_numa_node_os_index(int node) mi_attr_noexcept;

/* The distance between two nodes as the firmware reports it (10 = local;
   20 = one hop when the firmware gives none), or -1 for invalid nodes. */
mi_decl_export int mi_numa_node_distance(int from, int to) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Placement
--------------------------------------------------------------------------- */
/* A heap whose pages come from the given node's arenas (falling back to the
   nearest node by distance only when that node cannot give memory). Like any
   heap it allocates only on the thread that created it; any thread may free.
   NULL (errno EINVAL) for an invalid node. */
mi_decl_nodiscard mi_decl_export mi_heap_t* mi_heap_new_on_node(int node);

/* Allocates from the given node's memory, from any thread (through a heap of
   the calling thread kept for that node). NULL for an invalid node (errno
   EINVAL) or when out of memory. Freed with mi_free/free like any block. */
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc_on_node(size_t size,
                                                                          int node) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc_on_node(size_t size,
                                                                          int node) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);

/* The node of the memory a block (or any address the allocator manages)
   belongs to: the node its arena is bound to (0 for every block on a
   one-node machine); -1 if not ours, or not bound to a node on a machine of
   several nodes. */
mi_decl_export int mi_numa_node_of(const void* p) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Statistics per node
--------------------------------------------------------------------------- */
/* The memory of the process in rows: one per node (its arenas; on a
   one-node machine also the arenas bound to no node), and the rows named
   below. The rows add up to MI_NUMA_STATS_TOTAL, figure by figure, and in
   each row blocks <= in_use <= committed <= reserved. These are the numbers
   of the statistics report (mi_stats_print) and of mallinfo2/malloc_info. */
#define MI_NUMA_STATS_TOTAL (-1)   /* the whole process: the sum of every row */
#define MI_NUMA_STATS_UNBOUND (-2) /* arenas bound to no node (machines with several nodes) */
#define MI_NUMA_STATS_OUTSIDE \
  (-3) /* segments mapped outside arenas (blocks too big for an arena, or no arena could give memory) */
#define MI_NUMA_STATS_METADATA (-4) /* the allocator's own metadata (thread data, arena bitmaps) */

typedef struct mi_numa_stats_s {
  int node;         /* the node (or MI_NUMA_STATS_*) these are for */
  int os_index;     /* its kernel number (-1 for the other rows) */
  size_t reserved;  /* bytes of address space */
  size_t committed; /* bytes of it committed */
  size_t in_use;    /* committed bytes of live segments (the rest of committed is free memory waiting for its purge) */
  size_t purged;    /* bytes purged (returned to the OS) in total */
  size_t huge_pages_reserved; /* 1 GiB pages reserved */
  size_t huge_pages_in_use;   /* of those, 1 GiB worth of segments in use */
  size_t local_segments;      /* segments for this node's threads served from this node */
  size_t remote_segments;     /* segments for this node's threads served from another node */
  size_t fallbacks;           /* times this node could not give memory (counted on the asking node) */
  size_t blocks;              /* bytes of the program's live blocks (block sizes; big blocks included) */
  size_t block_count;         /* live blocks */
  size_t big_blocks;          /* live blocks over 2 MiB, each in a segment of its own */
  size_t big_block_bytes;     /* their bytes */
  size_t purge_pending;       /* committed bytes free and waiting for their purge (malloc_trim returns them) */
} mi_numa_stats_t;

/* Fills *stats for a node (0 .. mi_numa_node_count()-1) or an MI_NUMA_STATS_*
   row; 0 on success, EINVAL for an invalid node or NULL. Walks the live
   segments: about a millisecond per GiB in use. */
mi_decl_export int mi_numa_stats(int node, mi_numa_stats_t* stats) mi_attr_noexcept;

/* The process's statistics now as one line of JSON (as in mimalloc 3): the
   figures of the published statistics area (mimalloc-numa-stats.h, option
   stats_publish), with its field names; the schema is docs/stats-json.md.
   With buf NULL (or buf_size 0) the text is allocated with mi_malloc: free
   it with mi_free. Else it is written into buf, NUL-terminated, and buf is
   returned; when it does not fit in buf_size bytes, buf holds "" and the
   result is NULL with errno ERANGE (a cut document would not parse), about
   32 KiB always fit. NULL with errno ENOMEM when no memory was had. Walks
   the live segments: about a millisecond per GiB in use. */
mi_decl_nodiscard mi_decl_export char* mi_stats_get_json(size_t buf_size, char* buf) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Options with a string value (mi_option_stats_file)
--------------------------------------------------------------------------- */
/* Sets a string option; "" (or NULL) unsets it. Returns false, with a
   warning naming the option and what it expects, for a value it does not
   take (the option keeps its value) or an option that is not a string.
   mi_option_get() of a string option is 1 while it is set, 0 when not;
   mi_option_set(option, 0) unsets it. */
mi_decl_export bool mi_option_set_string(mi_option_t option, const char* value) mi_attr_noexcept;

/* Copies a string option's value into buf (NUL-terminated, cut to size-1
   bytes); returns its full length (0 when unset or not a string option). */
mi_decl_export size_t mi_option_get_string(mi_option_t option, char* buf, size_t size) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Configuration
--------------------------------------------------------------------------- */
/* Checks a configuration file (mimalloc-numa.toml(5)) without applying it:
   each problem is written as one line "FILE:LINE: ..." to `out` (the
   registered output, stderr by default, when NULL). Returns the number of
   problems: 0 for a clean file (an unreadable file counts as one). */
mi_decl_export int mi_config_check(const char* path, mi_output_fun* out, void* arg) mi_attr_noexcept;

#ifdef __cplusplus
}
#endif

#endif /* MIMALLOC_NUMA_H */
