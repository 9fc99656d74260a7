// node_release.cpp: before the process grows on one NUMA node, the free
// memory that other nodes hold for no thread goes back to the OS.
//
// Why: memory stays on its node (a thread takes segments, arena blocks and
// abandoned segments of its own node only), so what a node's threads freed
// is of no use to a thread of another node. A node-blind allocator hands
// it to whoever asks next; we kept it until its purge delay ran out
// (purge_delay x arena_purge_mult, 250 ms at the defaults), and a thread of
// another node allocating meanwhile faulted in the same amount again: the
// process's peak was both. Issue 13, in the 4-node guest: a node-0 thread
// frees what it allocated and exits, a node-1 thread allocates as much.
//
// What goes: arena blocks freed by segments of other nodes and still
// waiting for their purge (arena/arena.cpp arenas_purge_off_node), and the
// free blocks in the pages of other nodes' abandoned segments
// (heap/abandoned_purge.cpp). What stays: the pages, retired and kept
// segments of live threads (their owners reuse them), unbound arenas and
// segments (any node's thread takes them), pinned (huge page) arenas.
//
// When: only as the process grows, so a process whose nodes' threads free
// and allocate in turn without growing keeps its purge delays; the cost of
// a release is that a thread of the other node that wants the memory back
// within the delay faults it in again. Two cheap tests (an atomic per
// arena, one counter) answer when nothing waits. One node: nothing to do.
#include "node_release.h"

#include "../arena/arena.h"
#include "../segment/segment.h"
#include "abandoned_purge.h"

namespace mi {

void heap_release_off_node(const Heap* heap) noexcept {
  const int node = segment_node_for(heap);  // -1 on a one-node machine
  if (node < 0) return;
  arenas_purge_off_node(node);
  heap_purge_abandoned_off_node(node);
}

}  // namespace mi
