// segment_internal.h: what segment.cpp gives the other files of the segment
// layer (purge_list.cpp) and nobody else: the segment's state lock, the purge
// of one segment's due pages, and the fields read as hints without that lock.
// Thread-safety: as each declaration says; the state lock is the one that
// guards a segment's page masks against a purge from another thread.
#pragma once

#include <cstdint>

#include "../common/types.h"

namespace mi {

// commit_mask and purge_expire_ms change under the segment lock (by the
// owner, or by a purge in another thread) and are also read without it, as
// hints; relaxed atomics make those reads well defined (and cost nothing: a
// plain load or store on x86-64), and nothing depends on their being fresh:
//  - the owner reads commit_mask to prefer free pages that are still
//    committed (segment_page_alloc); a purge clearing a bit meanwhile only
//    makes that choice less good, as segment_page_claim commits under the lock;
//  - segments_try_purge and segments_next_purge_in_ms read purge_expire_ms
//    under the list lock only: a value a moment old makes a purge a little
//    early or late, and the purge itself runs under the segment lock.
inline uint64_t commit_mask_of(const Segment* s) { return s->commit_mask.load(std::memory_order_relaxed); }
// pre: the segment lock is held (the only writers), or s is not published yet
inline void commit_mask_set(Segment* s, uint64_t mask) { s->commit_mask.store(mask, std::memory_order_relaxed); }
inline int64_t purge_expire_of(const Segment* s) { return s->purge_expire_ms.load(std::memory_order_relaxed); }
// pre: the segment lock is held
inline void purge_expire_set(Segment* s, int64_t ms) { s->purge_expire_ms.store(ms, std::memory_order_relaxed); }

// The segment state lock (segment.cpp says how a fork child sees a lock held
// at the fork). try: false when another thread holds it.
bool segment_try_lock(Segment* s);
void segment_lock(Segment* s);
void segment_unlock(Segment* s);

// Purges free pages, one system call per run of adjacent pages: with `all`,
// every page waiting for its purge; otherwise only the pages that have stayed
// free for a whole interval (purge_aged_mask), while the ones freed during
// the interval age into the next one (and the interval adapts first:
// purge_backoff_adapt): memory that stays free goes back to the OS within two
// intervals. Returns true when pages still wait (the segment stays on the
// purge list). pre: the segment lock is held
bool segment_purge_due_pages(Segment* s, bool all, int64_t now);

}  // namespace mi
