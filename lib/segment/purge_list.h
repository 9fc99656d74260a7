// purge_list.h: the purge list, segments with free pages waiting for their
// purge, of every thread (abandoned ones too), and the timing of those purges.
//
// Owns: the list and its lock, its due time (the earliest purge on it), the
// walk of the list in steps (segments_try_purge, segment.h), a segment's
// purge interval and its backoff.
// Invariants: a segment is on the list iff in_purge_queue; the list's count
// is its length; no purge on the list is due before its due time (it may be
// early, never late).
// Thread-safety: the list lock guards the links and in_purge_queue (which
// purge_list_add reads first without it, an atomic); a segment's state lock
// (segment_internal.h) guards its page masks. Order: a segment's owner holds
// its segment lock, then takes the list lock; a purger holds the list lock
// and only tries a segment lock.
#pragma once

#include <cstdint>

#include "../common/types.h"

namespace mi {

// Puts s on the list (once). pre: the segment lock is held
void purge_list_add(Segment* s);
// Takes s off the list, if it is on it. A segment that goes away is taken
// off under its segment lock (segment_free): a purge running on it puts it
// back at the end of the list, holding that lock.
void purge_list_remove(Segment* s);
// Is s on the list? (by address: s is not read; tests)
bool purge_list_contains(const Segment* s);

// Starts a purge interval: due after purge_delay, extended by each free up
// to purge_delay * arena_purge_mult; both times 2^purge_backoff.
void purge_interval_start(Segment* s, int64_t now);
// At the end of an interval (segment_purge_due_pages without `all`): when
// pages purged at the end of one interval are committed again before the end
// of the next, the segment is churning and its intervals double (up to
// PURGE_BACKOFF_MAX times); an interval without such a page halves them
// again. Measured on the mixed-size benchmark (tests/bench/mixed_bench,
// working set stable, sizes to 1 MiB): fixed 100 ms intervals faulted 2x as
// often as mimalloc, which never purges under load. pre: the segment lock is
// held
void purge_backoff_adapt(Segment* s);

// fork(): the list lock is held across fork; the child starts with it free.
void purge_list_fork_prepare();
void purge_list_fork_parent();
void purge_list_fork_child();

}  // namespace mi
