/* mimalloc-numa.h: what mimalloc-numa offers beyond mimalloc's API.

   Include <mimalloc.h> for the mimalloc-compatible API; this header adds the
   project's own extensions. Every function declared here works. */
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

/* NUMA nodes the allocator uses (>= 1; capped by the use_numa_nodes option). */
mi_decl_export int mi_numa_node_count(void) mi_attr_noexcept;

/* The node of the CPU the calling thread runs on (0 .. mi_numa_node_count()-1). */
mi_decl_export int mi_numa_current_node(void) mi_attr_noexcept;

#ifdef __cplusplus
}
#endif

#endif /* MIMALLOC_NUMA_H */
