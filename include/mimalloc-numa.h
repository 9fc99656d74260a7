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
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_malloc_on_node(size_t size, int node) mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* mi_zalloc_on_node(size_t size, int node) mi_attr_noexcept mi_attr_malloc mi_attr_alloc_size(1);

/* The node of the memory a block (or any address the allocator manages)
   belongs to: the node its arena is bound to; -1 if not ours or not bound. */
mi_decl_export int mi_numa_node_of(const void* p) mi_attr_noexcept;

/* ---------------------------------------------------------------------------
   Statistics per node
--------------------------------------------------------------------------- */
typedef struct mi_numa_stats_s {
  int node;                    /* the node these are for */
  int os_index;                /* its kernel number */
  size_t reserved;             /* bytes of arena address space bound to the node */
  size_t committed;            /* bytes of it committed */
  size_t in_use;               /* bytes of it in segments */
  size_t purged;               /* bytes purged (returned to the OS) in total */
  size_t huge_pages_reserved;  /* 1 GiB pages reserved on the node */
  size_t huge_pages_in_use;    /* of those, 1 GiB worth of segments in use */
  size_t local_segments;       /* segments for this node's threads served from this node */
  size_t remote_segments;      /* segments for this node's threads served from another node */
  size_t fallbacks;            /* times this node could not give memory (counted on the asking node) */
} mi_numa_stats_t;

/* Fills *stats for a node; 0 on success, EINVAL for an invalid node or NULL. */
mi_decl_export int mi_numa_stats(int node, mi_numa_stats_t* stats) mi_attr_noexcept;

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
