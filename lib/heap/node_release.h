// node_release.h: before the process grows on one NUMA node, the free memory
// that other nodes hold for no thread goes back to the OS (node_release.cpp).
#pragma once

#include "../common/types.h"

namespace mi {

// Called by the allocation slow path just before it makes a new segment for
// `heap` (memory the process did not hold a moment ago). On a one-node
// machine it does nothing.
void heap_release_off_node(const Heap* heap) noexcept;

}  // namespace mi
