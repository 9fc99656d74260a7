// arena.cpp: see arena.h.
//
// An arena is a range of address space split into ARENA_BLOCK_SIZE blocks,
// described by four bitmaps of one bit per block (arena_internal.h).
// Freeing blocks clears `inuse` and sets `purge`; the purge runs later (delay
// purge_delay * arena_purge_mult) unless the blocks are claimed again first,
// which clears their `purge` bits: memory that is freed and reused quickly
// never costs a system call.
#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../common/test_point.h"
#include "../os/os.h"
#include "../topology/topology.h"
#include "arena_internal.h"
#include "bitmap.h"

namespace mi {

// Some arena may have a purge scheduled (set where an arena's purge_expire
// is set: arena_schedule_purge, arena_rearm_purge; cleared by
// arenas_try_purge while it looks at every arena).
constinit std::atomic<bool> arenas_purge_pending{false};

namespace {

constinit std::atomic<Arena*> arenas[ARENA_MAX_COUNT]{};

// Placement counters per node (mi_numa_stats).
struct NodeStats {
  std::atomic<int64_t> local_segments;
  std::atomic<int64_t> remote_segments;
  std::atomic<int64_t> fallbacks;
};
constinit NodeStats node_stats[NUMA_MAX_NODES]{};
std::atomic<size_t> arena_count{0};

}  // namespace

pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;

Arena* arena_at(size_t index) noexcept { return arenas[index].load(std::memory_order_acquire); }

// arena_count may pass ARENA_MAX_COUNT for a moment (arena_add takes its
// index first and gives it back when the table is full).
size_t arenas_added() noexcept {
  const size_t count = arena_count.load(std::memory_order_acquire);
  return (count > ARENA_MAX_COUNT) ? ARENA_MAX_COUNT : count;
}

namespace {

// The node an arena is shown with: its own, or 0 for an unbound arena of a
// one-node machine (all memory is node 0's there; -1 read as "no node").
int arena_node_shown(const Arena* a) { return (a->numa_node < 0 && topology().node_count == 1) ? 0 : a->numa_node; }

// Commits the blocks of [idx, idx+count) that are not committed yet.
bool arena_commit_blocks(Arena* a, size_t idx, size_t count) {
  MI_ASSERT(a->blocks_committed != nullptr && bitmap_is_all_set(a->blocks_inuse, a->field_count, idx, count));
  const size_t end = idx + count;
  size_t i = idx;
  while (i < end) {
    if (bitmap_is_all_set(a->blocks_committed, a->field_count, i, 1)) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < end && !bitmap_is_all_set(a->blocks_committed, a->field_count, j, 1)) j++;
    if (a->accessible) {
      os_stat_committed(static_cast<int64_t>((j - i) * ARENA_BLOCK_SIZE), a->account);
    } else {
      bool zero = false;
      if (!os_commit(arena_block_start(a, i), (j - i) * ARENA_BLOCK_SIZE, &zero, a->account)) return false;
    }
    bitmap_claim(a->blocks_committed, a->field_count, i, j - i, nullptr);
    i = j;
  }
  return true;
}

// Purges [idx, idx+count). pre: the caller holds the blocks (in-use bits).
// Blocks marked committed are subtracted from the committed bytes; the others
// were accounted when their segment was freed (arena_free). Decommitted blocks
// read as zero afterwards: they lose their dirty and committed bits.
void arena_purge_blocks(Arena* a, size_t idx, size_t count) {
  MI_ASSERT(!a->is_pinned && idx + count <= a->block_count);
  MI_ASSERT(bitmap_is_all_set(a->blocks_inuse, a->field_count, idx, count));
  const size_t end = idx + count;
  size_t i = idx;
  while (i < end) {
    bool committed = bitmap_is_all_set(a->blocks_committed, a->field_count, i, 1);
    size_t j = i + 1;
    while (j < end && bitmap_is_all_set(a->blocks_committed, a->field_count, j, 1) == committed) j++;
    if (os_purge(arena_block_start(a, i), (j - i) * ARENA_BLOCK_SIZE, committed, a->account)) {
      bitmap_unclaim(a->blocks_committed, a->field_count, i, j - i);
      bitmap_unclaim(a->blocks_dirty, a->field_count, i, j - i);
    }
    i = j;
  }
}

int64_t arena_purge_delay_ms() {
  long delay = option_get(mi_option_purge_delay);
  if (delay < 0) return -1;
  return static_cast<int64_t>(delay) * option_get(mi_option_arena_purge_mult);
}

}  // namespace

int arena_add(void* start, size_t size, bool is_committed, bool is_pinned, bool is_zero, int numa_node, bool exclusive,
              const MemId& memid, bool accessible) {
  size_t blocks = size / ARENA_BLOCK_SIZE;
  if (blocks == 0) return 0;
  size_t fields = divide_up(blocks, BITMAP_FIELD_BITS);
  size_t bitmaps = is_pinned ? 2 : 4;  // inuse, dirty [, committed, purge]
  size_t meta_size = sizeof(Arena) + (bitmaps * fields - 1) * sizeof(BitmapField);
  MemId meta_memid;
  void* meta = os_alloc_aligned(align_up(meta_size, os_page_size()), os_page_size(), true, false, &meta_memid);
  if (meta == nullptr) return 0;
  os_advise_no_thp(meta, align_up(meta_size, os_page_size()));  // a few pages: not a 2 MiB fault (os.h)
  Arena* a = static_cast<Arena*>(meta);                         // zeroed by the OS
  a->memid = memid;
  a->meta_memid = meta_memid;
  a->meta_size = align_up(meta_size, os_page_size());
  a->start = static_cast<uint8_t*>(start);
  a->block_count = blocks;
  a->field_count = fields;
  a->numa_node = numa_node;
  a->account = account_of_node(numa_node);
  MI_ASSERT(memid.kind != MemKind::os || memid.account == a->account);
  a->exclusive = exclusive;
  a->is_pinned = is_pinned;
  a->accessible = accessible && !is_pinned && !MI_DEBUG;
  a->blocks_dirty = &a->blocks_inuse[fields];
  a->blocks_committed = is_pinned ? nullptr : &a->blocks_inuse[2 * fields];
  a->blocks_purge = is_pinned ? nullptr : &a->blocks_inuse[3 * fields];
  if (!is_zero) bitmap_claim(a->blocks_dirty, fields, 0, blocks, nullptr);
  if (a->blocks_committed != nullptr && is_committed && !a->accessible) {
    bitmap_claim(a->blocks_committed, fields, 0, blocks, nullptr);
  }
  // bits beyond the last block are permanently "in use"
  size_t tail = fields * BITMAP_FIELD_BITS - blocks;
  if (tail > 0) bitmap_claim(a->blocks_inuse, fields, blocks, tail, nullptr);

  size_t index = arena_count.fetch_add(1, std::memory_order_acq_rel);
  if (index >= ARENA_MAX_COUNT) {
    arena_count.fetch_sub(1, std::memory_order_acq_rel);
    os_free(meta, a->meta_size, meta_memid);
    warning_message("too many arenas (%zu); memory at %p (%zu bytes) not added", ARENA_MAX_COUNT, start, size);
    return 0;
  }
  a->id = static_cast<int>(index) + 1;
  arenas[index].store(a, std::memory_order_release);
  MI_ASSERT_EXPENSIVE(arena_is_valid(a, false));
  verbose_message("arena %d: %zu MiB at %p, node %d%s%s%s", a->id, blocks * ARENA_BLOCK_SIZE / MiB, start,
                  arena_node_shown(a), is_pinned ? ", pinned" : "", is_committed ? ", committed" : ", lazy commit",
                  exclusive ? ", exclusive" : "");
  return a->id;
}

namespace {

void arena_purge_excess(Arena* a);

// Bit i of a bitmap, from a relaxed snapshot.
bool bit_at(const BitmapField* bm, size_t i) {
  return ((bm[i / BITMAP_FIELD_BITS].load(std::memory_order_relaxed) >> (i % BITMAP_FIELD_BITS)) & 1) != 0;
}

// Finds the run of `blocks` free blocks that holds the most blocks freed but
// not purged yet (still resident: the `purge` bits), *idx its start; false
// when no free run holds any. Ties: the shortest free run (what is left whole
// stays for the larger segments), then the lowest. A segment that needs more
// than any freed run holds takes a freed run and the free blocks beside it:
// first fit alone took the lowest free blocks (faulted in anew) while a
// freed huge block's memory stayed resident beside them, waiting for its
// purge (segment_bench: 300 MiB peak for 192 MiB live). From a relaxed
// snapshot: the caller claims the run, which fails if it was taken meanwhile.
// Races with the purger are benign: it claims the blocks while purging, and
// a run purged meanwhile is handed out like any other (its commit state is
// in blocks_committed).
bool arena_find_resident_run(const Arena* a, size_t blocks, size_t* idx) {
  size_t best_score = 0, best_len = 0, best_idx = 0;
  size_t i = 0;
  while (i < a->block_count) {
    // skip what is in use, a field at a time where it is full
    const uint64_t used = a->blocks_inuse[i / BITMAP_FIELD_BITS].load(std::memory_order_relaxed);
    if ((i % BITMAP_FIELD_BITS) == 0 && used == ~uint64_t{0}) {
      i += BITMAP_FIELD_BITS;
      continue;
    }
    if (bit_at(a->blocks_inuse, i)) {
      i++;
      continue;
    }
    // the free run [i, end) (the bits past the last block are in use: it ends there)
    size_t end = i + 1;
    while (end < a->block_count && !bit_at(a->blocks_inuse, end)) end++;
    const size_t len = end - i;
    if (len >= blocks) {
      // the window of `blocks` in the run with the most resident blocks
      size_t score = 0;
      for (size_t k = i; k < i + blocks; k++) score += bit_at(a->blocks_purge, k) ? 1 : 0;
      size_t win = i, win_score = score;
      for (size_t k = i + blocks; k < end && win_score < blocks; k++) {
        if (bit_at(a->blocks_purge, k)) score++;
        if (bit_at(a->blocks_purge, k - blocks)) score--;
        if (score > win_score) {
          win_score = score;
          win = k + 1 - blocks;
        }
      }
      if (win_score > best_score || (win_score == best_score && win_score > 0 && len < best_len)) {
        best_score = win_score;
        best_len = len;
        best_idx = win;
      }
    }
    i = end;
  }
  if (best_score == 0) return false;
  *idx = best_idx;
  return true;
}

// Claims a run of `blocks` free blocks with as many blocks freed but not
// purged yet as a run can hold (arena_find_resident_run; again if another
// thread took it meanwhile). First fit alone took purged blocks below them,
// so a segment freed and wanted again soon after (the mixed-size benchmark
// frees and makes segments all the time) cost a purge of the old blocks and
// page faults on the new ones.
bool arena_try_claim_resident(Arena* a, size_t blocks, size_t* idx) {
  if (a->blocks_purge == nullptr) return false;
  if (blocks == 1) {
    // (any will do: the first, a word at a time; most claims are of one block)
    for (size_t f = 0; f < a->field_count; f++) {
      uint64_t m =
          a->blocks_purge[f].load(std::memory_order_relaxed) & ~a->blocks_inuse[f].load(std::memory_order_relaxed);
      while (m != 0) {
        const size_t i = f * BITMAP_FIELD_BITS + bit_scan_forward(m);
        if (bitmap_try_claim(a->blocks_inuse, a->field_count, i, 1)) {
          *idx = i;
          return true;
        }
        m &= m - 1;
      }
    }
    return false;
  }
  for (int tries = 0; tries < 3; tries++) {
    if (!arena_find_resident_run(a, blocks, idx)) return false;
    if (bitmap_try_claim(a->blocks_inuse, a->field_count, *idx, blocks)) return true;
  }
  return false;
}

// Claims `blocks` blocks in arena `a`; fills memid. nullptr if it has no room.
void* arena_try_alloc_at(Arena* a, size_t blocks, bool commit, MemId* memid) {
  // Blocks still waiting for their purge first (as many as a run can hold),
  // then first fit: the lowest free blocks were used most recently, so
  // reusing them keeps the resident set small.
  size_t idx;
  if (!arena_try_claim_resident(a, blocks, &idx) &&
      !bitmap_try_find_claim(a->blocks_inuse, a->field_count, 0, blocks, &idx)) {
    return nullptr;
  }
  MI_ASSERT(idx + blocks <= a->block_count);  // (the bits past the last block are always set)
  uint8_t* p = arena_block_start(a, idx);
  *memid = MemId{};
  memid->kind = MemKind::arena;
  memid->arena_index = static_cast<uint32_t>(a->id - 1);
  memid->block_index = static_cast<uint32_t>(idx);
  memid->block_count = static_cast<uint32_t>(blocks);
  memid->is_pinned = a->is_pinned;
  memid->is_large = a->memid.is_large;
  memid->is_accessible = a->accessible;
  memid->numa_node = a->numa_node;
  memid->account = static_cast<uint8_t>(a->account);
  // A pending purge of these blocks is cancelled: we own them now.
  if (a->blocks_purge != nullptr) bitmap_unclaim(a->blocks_purge, a->field_count, idx, blocks);
  // Zero unless handed out before (fresh or purged with decommit).
  memid->initially_zero = bitmap_claim(a->blocks_dirty, a->field_count, idx, blocks, nullptr);
  if (a->blocks_committed == nullptr) {
    memid->initially_committed = true;
  } else if (commit) {
    if (!arena_commit_blocks(a, idx, blocks)) {
      bitmap_unclaim(a->blocks_inuse, a->field_count, idx, blocks);
      return nullptr;
    }
    memid->initially_committed = true;
  } else {
    memid->initially_committed = bitmap_is_all_set(a->blocks_committed, a->field_count, idx, blocks);
  }
  arena_purge_excess(a);
  MI_ASSERT_EXPENSIVE(arena_memory_is_held(p, *memid));
  MI_ASSERT_EXPENSIVE(arena_is_valid(a, false));
  return p;
}

constexpr int ANY_NODE = -2;

// Claims blocks in one of the arenas of `node` (any arena for ANY_NODE; also
// unbound ones when include_unbound); huge-page (pinned) arenas first, so
// reserved 1 GiB pages are used before regular memory.
void* arenas_try_alloc_node(size_t blocks, bool commit, bool allow_large, int node, bool include_unbound,
                            MemId* memid) {
  const size_t count = arenas_added();
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < count; i++) {
      Arena* a = arena_at(i);
      if (a == nullptr || a->exclusive || a->is_pinned != (pass == 0)) continue;
      if (!allow_large && a->memid.is_large) continue;
      if (node != ANY_NODE && a->numa_node != node && !(include_unbound && a->numa_node < 0)) continue;
      void* p = arena_try_alloc_at(a, blocks, commit, memid);
      if (p != nullptr) return p;
    }
  }
  return nullptr;
}

// Bytes of arena address space bound to a node.
size_t node_reserved_bytes(int node) {
  size_t total = 0;
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    if (a != nullptr && a->numa_node == node) total += a->block_count * ARENA_BLOCK_SIZE;
  }
  return total;
}

// How much a new arena on `node` may reserve (at least `need` bytes), or 0
// when the node cannot give memory: its size (from the topology) is used up
// by our arenas, or (with real binding) the kernel reports too little free.
size_t node_room(int node, size_t want, size_t need) {
  const Topology& t = topology();
  if (t.node_count <= 1 || node < 0) return want;
  size_t room = want;
  uint64_t total = t.nodes[node].memory_bytes;
  if (total > 0) {
    size_t used = node_reserved_bytes(node);
    size_t left = (total > used) ? static_cast<size_t>(total - used) : 0;
    if (left < room) room = align_down(left, ARENA_BLOCK_SIZE);
  }
  if (t.binding_possible && option_get(mi_option_numa_bind) != 0) {
    int64_t free_bytes = os_numa_node_free(t.nodes[node].os_index);
    // leave the kernel some slack on the node
    if (free_bytes >= 0) {
      size_t usable = (free_bytes > static_cast<int64_t>(64 * MiB)) ? static_cast<size_t>(free_bytes) - 64 * MiB : 0;
      if (usable < room) room = align_down(usable, ARENA_BLOCK_SIZE);
    }
  }
  return (room >= need) ? room : 0;
}

// After a reservation had to shrink: the size that was had (0: none had to).
// The next arena tries twice that at most, not the full size again: under an
// address-space limit (ulimit -v) the full 1 GiB failed for every new
// segment, with a warning each time. Guarded by reserve_lock.
size_t reserve_shrunk_to = 0;
std::atomic<bool> reserve_shrink_said{false};

void say_reservation_shrank(size_t wanted, int err, size_t got) {
  if (reserve_shrink_said.exchange(true)) return;
  char w[32], g[32];
  format_bytes(w, sizeof(w), static_cast<int64_t>(wanted));
  format_bytes(g, sizeof(g), static_cast<int64_t>(got));
  warning_message(
      "could not reserve %s of address space for an arena (%s); %s%s%s. Later arenas too take what they "
      "can get, without a further warning",
      w, errno_text(err), got > 0 ? "reserved " : "memory is mapped as it is needed", got > 0 ? g : "",
      got > 0 ? " instead" : "");
}

// Reserves `size` bytes for an arena, or less if the OS does not give that
// much. Returns the mapping and its size in *got, or nullptr (errno set).
// `need` (a multiple of ARENA_BLOCK_SIZE) is what the segment asking for it
// takes. A reservation for segments of ARENA_BLOCK_SIZE halves down to that;
// one for a larger (huge) segment does not shrink: an arena smaller than the
// full size but larger than the segment leaves address space nobody can use
// where it is scarce (32 MiB blocks under ulimit -v 262144: 4 instead of 6),
// and the segment is mapped by itself instead (arena_alloc's fallback).
void* arena_reserve_shrinking(size_t size, size_t need, bool commit, bool allow_large, int node, MemId* memid,
                              size_t* got) {
  const size_t wanted = size;
  if (reserve_shrunk_to != 0 && size / 2 > reserve_shrunk_to) size = align_up(2 * reserve_shrunk_to, ARENA_BLOCK_SIZE);
  int err = 0;
  for (;;) {
    void* p =
        os_try_alloc_aligned(size, ARENA_BLOCK_SIZE, commit, allow_large, memid, MI_DEBUG != 0, account_of_node(node));
    if (p != nullptr) {
      reserve_shrunk_to = (size < wanted) ? size : 0;
      if (size < wanted) say_reservation_shrank(wanted, err != 0 ? err : ENOMEM, size);
      *got = size;
      return p;
    }
    err = errno;
    if (size <= need || need > ARENA_BLOCK_SIZE) break;
    size = align_down(size / 2, ARENA_BLOCK_SIZE);
    if (size < need) size = need;
  }
  if (need <= ARENA_BLOCK_SIZE) reserve_shrunk_to = need;  // not even one segment: the next try starts there
  say_reservation_shrank(wanted, err, 0);
  errno = err;
  return nullptr;
}

// Reserves a fresh arena on `node` (-1: unbound) big enough for `blocks`;
// returns its id or 0.
int arena_reserve_for(size_t blocks, bool allow_large, int node) {
  size_t reserve = option_get_size(mi_option_arena_reserve);
  // [node.N] arena_reserve; an unbound arena of a one-node machine is node 0's
  // (the operator wrote [node.0] for the only node there is)
  const int config_node = (node < 0 && topology().node_count == 1) ? 0 : node;
  size_t node_reserve = config_node_arena_reserve(config_node);
  if (node_reserve > 0) reserve = node_reserve;
  if (reserve == 0) return 0;
  size_t count = arena_count.load(std::memory_order_relaxed);
  // grow the reservation as the number of arenas grows (mimalloc does the same)
  if (count >= 8 && count <= 128) reserve = (size_t{1} << (count / 8)) * reserve;
  reserve = align_up(reserve, ARENA_BLOCK_SIZE);
  const size_t need = blocks * ARENA_BLOCK_SIZE;
  if (reserve < need) reserve = need;
  reserve = node_room(node, reserve, need);
  if (reserve == 0) return 0;
  long eager = option_get(mi_option_arena_eager_commit);
  bool commit = (eager == 1) || (eager == 2 && os_has_overcommit());
  MemId memid;
  void* p = arena_reserve_shrinking(reserve, need, commit, allow_large, node, &memid, &reserve);
  if (p == nullptr) return 0;
  const Topology& t = topology();
  long policy = option_get(mi_option_numa_bind);
  if (node >= 0 && t.node_count > 1 && policy != 0) {
    // bind before anything touches it (on a topology the kernel does not
    // have, binding is skipped: the topology said so once, at start-up)
    if (t.binding_possible) os_numa_bind(p, reserve, t.nodes[node].os_index, static_cast<int>(policy));
  }
  memid.numa_node = node;
  int id = arena_add(p, reserve, memid.initially_committed, memid.is_pinned, memid.initially_zero, node, false, memid,
                     memid.is_accessible);
  if (id == 0) os_free(p, reserve, memid);
  return id;
}

// pre: the caller holds the blocks (a segment's, being freed).
void arena_schedule_purge(Arena* a, size_t idx, size_t blocks) {
  MI_ASSERT(bitmap_is_all_set(a->blocks_inuse, a->field_count, idx, blocks));
  if (a->blocks_purge == nullptr) return;
  int64_t delay = arena_purge_delay_ms();
  if (delay < 0) return;
  if (delay == 0) {
    arena_purge_blocks(a, idx, blocks);  // we still hold the blocks: nobody races us
    return;
  }
  bitmap_claim(a->blocks_purge, a->field_count, idx, blocks, nullptr);
  // A purge already pending is put off a little (purge_extend_delay) so that
  // memory freed in a burst is purged in one go, but never past twice the
  // delay from when it was first scheduled: continuous churn must not
  // postpone it for ever.
  int64_t now = os_clock_ms();
  int64_t expire = a->purge_expire.load(std::memory_order_relaxed);
  // Again when the expiry changed meanwhile: a purger that reset it to 0
  // (arena_try_purge) may have walked past these bits already, and a purge
  // with no expiry would never come.
  for (;;) {
    if (expire == 0) {
      a->purge_deadline.store(now + 2 * delay, std::memory_order_relaxed);
      if (a->purge_expire.compare_exchange_strong(expire, now + delay, std::memory_order_acq_rel)) {
        arenas_purge_pending.store(true, std::memory_order_release);
        return;
      }
    } else {
      int64_t extended = expire + option_get(mi_option_purge_extend_delay);
      int64_t deadline = a->purge_deadline.load(std::memory_order_relaxed);
      if (extended > deadline) extended = deadline;
      if (extended <= expire) return;
      if (a->purge_expire.compare_exchange_strong(expire, extended, std::memory_order_acq_rel)) return;
    }
  }
}

// Arms the expiry again for purge bits a purge left (arena_try_purge): the
// blocks of a run that a freeing thread still held, between its
// arena_schedule_purge and its unclaim. Without it they waited with no
// expiry, so neither the purge thread nor mi_collect(true) purged them until
// the arena's next free (test APurgeThatFindsFreedBlocksStillHeldPurgesThemLater).
void arena_rearm_purge(Arena* a) {
  bool left = false;
  for (size_t f = 0; f < a->field_count && !left; f++) left = a->blocks_purge[f].load(std::memory_order_relaxed) != 0;
  const int64_t delay = arena_purge_delay_ms();
  if (!left || delay < 0) return;
  const int64_t now = os_clock_ms();
  int64_t expire = 0;
  a->purge_deadline.store(now + 2 * delay, std::memory_order_relaxed);
  a->purge_expire.compare_exchange_strong(expire, now + (delay > 0 ? delay : 1), std::memory_order_acq_rel);
  arenas_purge_pending.store(true, std::memory_order_release);
}

// Purges the blocks of [bit, bit+len) of one field that still wait for
// their purge and that nobody uses. A block that is in use again had its
// purge bit cleared by its claimer.
void arena_purge_run(Arena* a, size_t field, size_t bit, size_t len) {
  const size_t idx = field * BITMAP_FIELD_BITS + bit;
  // Claim the run (or, if part of it is in use, block by block) so nobody
  // is handed memory while the OS purges it.
  const bool whole_run = bitmap_try_claim(a->blocks_inuse, a->field_count, idx, len);
  const size_t step = whole_run ? len : 1;
  for (size_t i = 0; i < len; i += step) {
    if (!whole_run && !bitmap_try_claim(a->blocks_inuse, a->field_count, idx + i, 1)) continue;
    uint64_t m = bitmap_mask(bit + i, step);
    uint64_t still = a->blocks_purge[field].fetch_and(~m, std::memory_order_acq_rel) & m;
    if (still == m) {
      arena_purge_blocks(a, idx + i, step);
    } else {  // some were claimed and freed again meanwhile: purge those still marked
      for (size_t k = 0; k < step; k++) {
        if ((still & bitmap_mask(bit + i + k, 1)) != 0) arena_purge_blocks(a, idx + i + k, 1);
      }
    }
    bitmap_unclaim(a->blocks_inuse, a->field_count, idx + i, step);
  }
}

// Purges the runs of purge bits of one field.
void arena_purge_field(Arena* a, size_t field) {
  uint64_t purge = a->blocks_purge[field].load(std::memory_order_acquire);
  while (purge != 0) {
    size_t bit = bit_scan_forward(purge);
    uint64_t rest = purge >> bit;
    size_t len = (~rest == 0) ? (BITMAP_FIELD_BITS - bit) : bit_scan_forward(~rest);
    purge &= ~bitmap_mask(bit, len);
    arena_purge_run(a, field, bit, len);
  }
}

// How much an arena keeps resident in free blocks waiting for their purge
// (arena_purge_excess): in use and waiting together, up to an eighth (at
// least two blocks) more than the most blocks it ever had in use at once.
// segment_bench (2 threads, 1-64 MiB blocks), two samples of 9 and 11 runs
// alternated at load 10 (CPU s / peak MiB medians; single runs spread
// 200-250 MiB and 0.13-0.30 s): an eighth 0.17 / 217 and 0.18 / 227; a
// sixteenth 0.20 / 217 and 0.23 / 214; a twelfth 0.23 / 222; a quarter
// 0.18 / 239; no cap (main) 0.20 / 261 (301 in run_bench); tcmalloc 0.16 /
// 284; jemalloc 1.79 / 219.
constexpr size_t PENDING_SLACK_DIV = 8;
constexpr size_t PENDING_MIN_BLOCKS = 2;

// Purges at once the free blocks waiting for their purge beyond what the
// arena may keep: its free and used blocks resident together no more than
// its peak in use and an eighth. Called after each claim, which took the
// blocks waiting first (arena_try_claim_resident): the arena grows in
// resident memory only when a claim found no freed run to reuse, and then
// what waits elsewhere is purged instead of adding up. Without it a program
// that frees and allocates huge blocks of changing sizes faster than the
// purge delay (segment_bench: 244 blocks of 1-64 MiB in 0.2 s) kept every
// block it had ever used resident: 300 MiB peak for 192 MiB live (jemalloc
// 216). A program whose blocks all fit the freed ones never gets here (its
// claims make nothing more resident), and one that shrinks keeps its free
// blocks until their delay, as before. The lowest blocks go first: against
// the highest first, segment_bench with one thread and 4 live blocks (seeds
// 1-3, deterministic) faulted 72.8/62.9/56.2 K pages instead of
// 97.7/69.1/68.2 K (main, with no cap: 52.7/63.0/43.3 K) at the same or a
// lower peak; with 2 threads, medians of 7 at load 10-12, 103 K faults and
// 212 MiB instead of 106 K and 231 MiB. (A likely reason: fresh claims
// take the lowest free run, where the purged blocks now are, and the blocks
// still waiting lie higher, in runs a later claim may find whole.)
void arena_purge_excess(Arena* a) {
  if (a->blocks_purge == nullptr || arena_purge_delay_ms() <= 0) return;
  size_t pending = 0, inuse = 0;
  for (size_t f = 0; f < a->field_count; f++) {
    pending += static_cast<size_t>(__builtin_popcountll(a->blocks_purge[f].load(std::memory_order_relaxed)));
    inuse += static_cast<size_t>(__builtin_popcountll(a->blocks_inuse[f].load(std::memory_order_relaxed)));
  }
  inuse -= a->field_count * BITMAP_FIELD_BITS - a->block_count;  // (the bits past the last block)
  size_t peak = a->inuse_peak.load(std::memory_order_relaxed);
  while (peak < inuse) {
    if (a->inuse_peak.compare_exchange_weak(peak, inuse, std::memory_order_relaxed)) peak = inuse;
  }
  const size_t slack = (peak / PENDING_SLACK_DIV > PENDING_MIN_BLOCKS) ? peak / PENDING_SLACK_DIV : PENDING_MIN_BLOCKS;
  const size_t keep = peak + slack - inuse;
  if (pending <= keep) return;
  size_t excess = pending - keep;
  for (size_t f = 0; f < a->field_count && excess > 0; f++) {
    uint64_t purge = a->blocks_purge[f].load(std::memory_order_acquire);
    while (purge != 0 && excess > 0) {
      // the lowest run of this field, its first `excess` blocks at most
      const size_t bit = bit_scan_forward(purge);
      const uint64_t rest = purge >> bit;
      size_t len = (~rest == 0) ? (BITMAP_FIELD_BITS - bit) : bit_scan_forward(~rest);
      if (len > excess) len = excess;
      purge &= ~bitmap_mask(bit, len);
      arena_purge_run(a, f, bit, len);
      excess -= len;
    }
  }
}

void arena_try_purge(Arena* a, int64_t now, bool force) {
  if (a->blocks_purge == nullptr) return;
  int64_t expire = a->purge_expire.load(std::memory_order_relaxed);
  if (expire == 0) return;
  if (!force && now < expire) return;
  // one thread purges an arena at a time: whoever resets the expiry
  if (!a->purge_expire.compare_exchange_strong(expire, 0, std::memory_order_acq_rel)) return;
  for (size_t f = 0; f < a->field_count; f++) {
    if (a->blocks_purge[f].load(std::memory_order_relaxed) != 0) arena_purge_field(a, f);
  }
  arena_rearm_purge(a);
}

}  // namespace

namespace {

// Claims blocks of one node: its arenas, else a new arena on it (under the
// reservation lock, so two threads do not both reserve).
void* arena_alloc_on_node(size_t blocks, bool commit, bool allow_large, int node, bool include_unbound, MemId* memid) {
  void* p = arenas_try_alloc_node(blocks, commit, allow_large, node, include_unbound, memid);
  if (p != nullptr || option_is_enabled(mi_option_disallow_os_alloc)) return p;
  pthread_mutex_lock(&reserve_lock);
  p = arenas_try_alloc_node(blocks, commit, allow_large, node, include_unbound, memid);
  if (p == nullptr) {
    int id = arena_reserve_for(blocks, allow_large, node == ANY_NODE ? -1 : node);
    if (id != 0) p = arena_try_alloc_at(arena_at(static_cast<size_t>(id - 1)), blocks, commit, memid);
  }
  pthread_mutex_unlock(&reserve_lock);
  return p;
}

// got: the node the memory is bound to, or -1 for unbound memory (local by
// first touch). `spilled`: every node had refused and the memory is the OS's,
// on no node we know of: counted as a fallback only, not as local or remote.
void note_placement(int home, int got, bool spilled = false) {
  if (home < 0 || home >= NUMA_MAX_NODES) return;
  if (spilled && got < 0) return;
  if (got == home || got < 0) node_stats[home].local_segments.fetch_add(1, std::memory_order_relaxed);
  else node_stats[home].remote_segments.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void* arena_alloc(size_t size, size_t alignment, bool commit, bool allow_large, int req_arena_id, int numa_node,
                  MemId* memid) noexcept {
  *memid = MemId{};
  memid->numa_node = -1;
  size = align_up(size, ARENA_BLOCK_SIZE);
  const size_t blocks = size / ARENA_BLOCK_SIZE;
  const bool fits_arena = size <= ARENA_MAX_OBJ_SIZE && alignment <= ARENA_BLOCK_SIZE;
  if (req_arena_id != 0) {  // a heap bound to an arena never spills
    if (!fits_arena || !arena_id_is_valid(req_arena_id)) return nullptr;
    return arena_try_alloc_at(arena_at(static_cast<size_t>(req_arena_id - 1)), blocks, commit, memid);
  }
  const Topology& t = topology();
  const bool explicit_node = numa_node >= 0 && numa_node < t.node_count;
  const int home = (t.node_count <= 1) ? -1 : (explicit_node ? numa_node : numa_current_node());
  if (fits_arena && !option_is_enabled(mi_option_disallow_arena_alloc)) {
    if (home < 0) {
      // one node: any arena
      void* p = arena_alloc_on_node(blocks, commit, allow_large, ANY_NODE, true, memid);
      if (p != nullptr) return p;
    } else {
      // The home node first (with unbound arenas), then the others nearest
      // first by distance: a thread's memory stays as close as it can be.
      for (int k = 0; k < t.node_count; k++) {
        int node = t.nodes[home].fallback[k];
        if (node < 0) break;
        // Unbound arenas (reserved before the topology was known, or given
        // without a node) are local by first touch for a thread's own heap,
        // but not for a heap that asked for a node.
        void* p = arena_alloc_on_node(blocks, commit, allow_large, node, k == 0 && !explicit_node, memid);
        if (p != nullptr) {
          note_placement(home, node);
          return p;
        }
        if (k == 0) {
          node_stats[home].fallbacks.fetch_add(1, std::memory_order_relaxed);
          if (once(Once::numa_fallback)) {
            int next = (t.node_count > 1) ? t.nodes[home].fallback[1] : -1;
            warning_message(
                "numa: node %d cannot give more memory; allocating on the nearest other node (%d, distance %d). "
                "Further fallbacks are counted in the statistics (mi_numa_stats) without a warning",
                home, next, next >= 0 ? t.nodes[home].distance[next] : 0);
          }
        }
      }
    }
  }
  if (option_is_enabled(mi_option_disallow_os_alloc)) {
    // the allocation slow path reports it once, after its retry (heap/page.cpp)
    verbose_message("out of arena memory for %zu bytes and disallow_os_alloc forbids OS memory", size);
    return nullptr;
  }
  // Plain OS memory: too big for an arena, or no arena could take it. Bound
  // to the home node when that is possible.
  // Not reported here: a failure is the allocation's, reported once where it
  // fails (the arena reservation before it would have said the same).
  void* p = os_try_alloc_aligned(size, alignment < ARENA_BLOCK_SIZE ? ARENA_BLOCK_SIZE : alignment, commit, allow_large,
                                 memid, true, ACCOUNT_OS);
  if (p != nullptr && home >= 0) {
    long policy = option_get(mi_option_numa_bind);
    // (not when it fits an arena: then every node's arenas were full)
    if (t.binding_possible && policy != 0 && !fits_arena) {
      os_numa_bind(p, size, t.nodes[home].os_index, static_cast<int>(policy));
      memid->numa_node = home;
    }
    note_placement(home, memid->numa_node, fits_arena);
  }
  return p;
}

bool arena_commit_held(MemId* memid) noexcept {
  if (memid->kind != MemKind::arena || memid->arena_index >= ARENA_MAX_COUNT) return false;
  Arena* a = arena_at(memid->arena_index);
  if (a == nullptr || size_t{memid->block_index} + memid->block_count > a->block_count) return false;
  if (a->blocks_committed != nullptr && !arena_commit_blocks(a, memid->block_index, memid->block_count)) return false;
  memid->initially_committed = true;
  return true;
}

void arena_free(void* p, size_t size, size_t committed_size, const MemId& memid) noexcept {
  if (p == nullptr || size == 0) return;
  if (memid.kind == MemKind::os) {
    os_free(p, size, memid);
    return;
  }
  if (memid.kind != MemKind::arena) return;  // external/static memory is never released
  Arena* a = (memid.arena_index < ARENA_MAX_COUNT) ? arena_at(memid.arena_index) : nullptr;
  size_t idx = memid.block_index;
  size_t blocks = memid.block_count;
  if (a == nullptr || idx + blocks > a->block_count || arena_block_start(a, idx) != p) {
    error_message(EINVAL, "freeing arena memory at %p that does not match its arena (corrupted segment header?)", p);
    return;
  }
  MI_ASSERT_EXPENSIVE(arena_memory_is_held(p, memid));
  if (a->blocks_committed != nullptr && committed_size < blocks * ARENA_BLOCK_SIZE) {
    // Partly committed: forget what was committed, so the next user commits
    // the whole range; the purge below releases what was committed.
    if (committed_size > 0) os_stat_committed(-static_cast<int64_t>(committed_size), a->account);
    bitmap_unclaim(a->blocks_committed, a->field_count, idx, blocks);
  }
  arena_schedule_purge(a, idx, blocks);
  test_point(TestPoint::arena_purge_scheduled);  // tests/unit/arena_test.cpp purges here
  if (!bitmap_unclaim(a->blocks_inuse, a->field_count, idx, blocks)) {
    error_message(EAGAIN, "arena blocks at %p freed twice", p);
  }
  MI_ASSERT_EXPENSIVE(arena_is_valid(a, false));
  arenas_try_purge(false);
}

void arenas_try_purge(bool force) noexcept {
  if (arena_purge_delay_ms() < 0 && !force) return;
  // Nothing scheduled in any arena (the periodic call of the allocation slow
  // path, most of the time): no clock read, no walk (pairs immediate-4096:
  // ~65 instructions every 32nd call). Cleared before the walk, set again
  // for an arena that still waits after it: a purge scheduled meanwhile set
  // it after this exchange (kept), or its expiry was stored before it (the
  // acquire: the walk sees the expiry).
  if (!arenas_purge_pending.exchange(false, std::memory_order_acq_rel) && !force) return;
  const size_t count = arenas_added();
  int64_t now = os_clock_ms();
  bool waiting = false;
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    if (a == nullptr) continue;
    arena_try_purge(a, now, force);
    if (a->purge_expire.load(std::memory_order_relaxed) != 0) waiting = true;
  }
  if (waiting) arenas_purge_pending.store(true, std::memory_order_release);
}

void arenas_purge_off_node(int node) noexcept {
  if (node < 0 || arena_purge_delay_ms() < 0) return;
  const size_t count = arenas_added();
  const int64_t now = os_clock_ms();
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    // pinned arenas are never purged; unbound ones serve every node
    if (a == nullptr || a->numa_node < 0 || a->numa_node == node || a->is_pinned) continue;
    if (a->purge_expire.load(std::memory_order_relaxed) != 0) arena_try_purge(a, now, true);
  }
}

int64_t arenas_next_purge_in_ms() noexcept {
  const size_t count = arenas_added();
  int64_t now = os_clock_ms();
  int64_t best = -1;
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    if (a == nullptr) continue;
    int64_t expire = a->purge_expire.load(std::memory_order_relaxed);
    if (expire == 0) continue;
    int64_t in = (expire > now) ? expire - now : 0;
    if (best < 0 || in < best) best = in;
  }
  return best;
}

bool arena_memid_is_suitable(const MemId& memid, int req_arena_id) noexcept {
  if (memid.kind == MemKind::arena) {
    Arena* a = arena_at(memid.arena_index);
    if (a == nullptr) return false;
    if (req_arena_id != 0) return a->id == req_arena_id;
    return !a->exclusive;
  }
  return req_arena_id == 0;
}

void arena_memid_ids(const MemId& memid, int* arena_id, int* exclusive) noexcept {
  *arena_id = 0;
  *exclusive = 0;
  if (memid.kind != MemKind::arena) return;
  Arena* a = arena_at(memid.arena_index);
  if (a == nullptr) return;
  *arena_id = a->id;
  if (a->exclusive) *exclusive = a->id;
}

bool arena_id_is_valid(int arena_id) noexcept {
  if (arena_id <= 0 || static_cast<size_t>(arena_id) > arena_count.load(std::memory_order_acquire)) return false;
  return arena_at(static_cast<size_t>(arena_id - 1)) != nullptr;
}

bool arena_contains(const void* p) noexcept {
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    if (a != nullptr && static_cast<const uint8_t*>(p) >= a->start &&
        static_cast<const uint8_t*>(p) < a->start + a->block_count * ARENA_BLOCK_SIZE) {
      return true;
    }
  }
  return false;
}

void arenas_visit(void (*fn)(const ArenaInfo& info, void* arg), void* arg) noexcept {
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    const Arena* a = arena_at(i);
    if (a == nullptr) continue;
    ArenaInfo info{};
    info.id = a->id;
    info.numa_node = a->numa_node;
    info.account = a->account;
    info.reserved = a->block_count * ARENA_BLOCK_SIZE;
    const size_t tail = a->field_count * BITMAP_FIELD_BITS - a->block_count;
    info.blocks_in_use = bitmap_count_set(a->blocks_inuse, a->field_count) - tail;
    if (a->blocks_purge != nullptr && a->blocks_committed != nullptr) {
      size_t pending = 0;
      for (size_t f = 0; f < a->field_count; f++) {
        const uint64_t m =
            a->blocks_purge[f].load(std::memory_order_relaxed) & a->blocks_committed[f].load(std::memory_order_relaxed);
        pending += static_cast<size_t>(__builtin_popcountll(m));
      }
      info.purge_pending = pending * ARENA_BLOCK_SIZE;
    }
    info.is_huge = a->memid.is_huge;
    info.is_pinned = a->is_pinned;
    info.exclusive = a->exclusive;
    fn(info, arg);
  }
}

void arenas_node_placement(int node, size_t* local, size_t* remote, size_t* fallbacks) noexcept {
  *local = *remote = *fallbacks = 0;
  if (node < 0 || node >= NUMA_MAX_NODES) return;
  *local = static_cast<size_t>(node_stats[node].local_segments.load(std::memory_order_relaxed));
  *remote = static_cast<size_t>(node_stats[node].remote_segments.load(std::memory_order_relaxed));
  *fallbacks = static_cast<size_t>(node_stats[node].fallbacks.load(std::memory_order_relaxed));
}

void arenas_unsafe_destroy_all() noexcept {
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    Arena* a = arenas[i].exchange(nullptr, std::memory_order_acq_rel);
    if (a == nullptr) continue;
    if (a->memid.kind == MemKind::os) os_free(a->start, a->block_count * ARENA_BLOCK_SIZE, a->memid);
    os_free(a, a->meta_size, a->meta_memid);
  }
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API (mimalloc.h)
// ---------------------------------------------------------------------------
using namespace mi;

extern "C" {

bool mi_manage_os_memory_ex(void* start, size_t size, bool is_committed, bool is_large, bool is_zero, int numa_node,
                            bool exclusive, mi_arena_id_t* arena_id) mi_attr_noexcept {
  if (arena_id != nullptr) *arena_id = 0;
  if (start == nullptr || size == 0) return false;
  // Segments need block-aligned memory: use the aligned middle of the range.
  uint8_t* aligned = static_cast<uint8_t*>(align_up_ptr(start, ARENA_BLOCK_SIZE));
  size_t lost = static_cast<size_t>(aligned - static_cast<uint8_t*>(start));
  if (lost >= size || size - lost < ARENA_BLOCK_SIZE) {
    warning_message("mi_manage_os_memory: the range at %p of %zu bytes holds no %zu MiB aligned block; not used", start,
                    size, ARENA_BLOCK_SIZE / MiB);
    return false;
  }
  size_t usable = align_down(size - lost, ARENA_BLOCK_SIZE);
  MemId memid{};
  memid.kind = MemKind::external;
  memid.is_large = is_large;
  memid.is_pinned = is_large;
  memid.initially_committed = is_committed;
  memid.initially_zero = is_zero;
  memid.numa_node = numa_node;
  memid.account = static_cast<uint8_t>(account_of_node(numa_node));
  int id = arena_add(aligned, usable, is_committed || is_large, is_large, is_zero, numa_node, exclusive, memid,
                     is_committed);
  if (id == 0) return false;
  if (is_large) os_stat_committed(static_cast<int64_t>(usable), memid.account);
  os_stat_reserved(static_cast<int64_t>(usable), memid.account);
  if (arena_id != nullptr) *arena_id = id;
  return true;
}

bool mi_manage_os_memory(void* start, size_t size, bool is_committed, bool is_large, bool is_zero,
                         int numa_node) mi_attr_noexcept {
  return mi_manage_os_memory_ex(start, size, is_committed, is_large, is_zero, numa_node, false, nullptr);
}

void* mi_arena_area(mi_arena_id_t arena_id, size_t* size) {
  if (size != nullptr) *size = 0;
  if (!arena_id_is_valid(arena_id)) return nullptr;
  Arena* a = arena_at(static_cast<size_t>(arena_id - 1));
  if (size != nullptr) *size = a->block_count * ARENA_BLOCK_SIZE;
  return a->start;
}

void mi_debug_show_arenas(bool show_inuse, bool show_abandoned, bool show_purge) mi_attr_noexcept {
  (void)show_abandoned;
  const size_t count = arenas_added();
  output("arenas: %zu\n", count);
  for (size_t i = 0; i < count; i++) {
    Arena* a = arena_at(i);
    if (a == nullptr) continue;
    size_t tail = a->field_count * BITMAP_FIELD_BITS - a->block_count;
    size_t inuse = bitmap_count_set(a->blocks_inuse, a->field_count) - tail;
    output("arena %d: %zu blocks of %zu MiB at %p, node %d%s%s, in use %zu\n", a->id, a->block_count,
           ARENA_BLOCK_SIZE / MiB, static_cast<void*>(a->start), arena_node_shown(a), a->is_pinned ? ", pinned" : "",
           a->exclusive ? ", exclusive" : "", inuse);
    auto show = [&](const char* name, const BitmapField* bm) {
      char line[BITMAP_FIELD_BITS + 1];
      for (size_t f = 0; f < a->field_count; f++) {
        uint64_t v = bm[f].load(std::memory_order_relaxed);
        size_t n = 0;
        for (size_t b = 0; b < BITMAP_FIELD_BITS && f * BITMAP_FIELD_BITS + b < a->block_count; b++) {
          line[n++] = ((v >> b) & 1) ? 'x' : '.';
        }
        line[n] = 0;
        output("  %-6s %s\n", name, line);
      }
    };
    if (show_inuse) show("inuse", a->blocks_inuse);
    if (show_purge && a->blocks_purge != nullptr) show("purge", a->blocks_purge);
  }
}

}  // extern "C"
