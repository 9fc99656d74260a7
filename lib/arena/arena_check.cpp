// arena_check.cpp: the arena and bitmap invariant walkers (arena_internal.h
// lists the invariants; arena.h and arena_internal.h declare the walkers).
//
// They read the bitmaps lock-free, as the statistics do, while other
// threads may claim, free and purge: each check is one that no such
// operation can break for a moment, or is left to the quiescent walk, and
// where two bitmaps are compared they are read in the order that makes a
// concurrent purge look harmless (arena_is_valid says which). Cost: a few
// loads per 64 blocks (one 64-bit field per bitmap covers 256 MiB).
#include <cstdint>

#include "../topology/topology.h"
#include "arena_internal.h"
#include "bitmap.h"

namespace mi {

namespace {

uint64_t field_load(const BitmapField* bm, size_t f) { return bm[f].load(std::memory_order_acquire); }

// The bits of field f that stand for blocks (the rest lie past block_count).
uint64_t field_blocks(const Arena* a, size_t f) {
  const size_t first = f * BITMAP_FIELD_BITS;
  if (first >= a->block_count) return 0;
  const size_t n = a->block_count - first;
  return (n >= BITMAP_FIELD_BITS) ? ~uint64_t{0} : bitmap_mask(0, n);
}

bool layout_is_valid(const Arena* a, Invalid* why) {
  if (a->id < 1 || static_cast<size_t>(a->id) > ARENA_MAX_COUNT || arena_at(static_cast<size_t>(a->id - 1)) != a) {
    return invalid(why, "arena %p: id %d is not its slot in the arena table", static_cast<const void*>(a), a->id);
  }
  if (a->block_count == 0 || a->field_count != divide_up(a->block_count, BITMAP_FIELD_BITS)) {
    return invalid(why, "arena %d: %zu blocks in %zu bitmap fields", a->id, a->block_count, a->field_count);
  }
  if (a->start == nullptr || (reinterpret_cast<uintptr_t>(a->start) & (ARENA_BLOCK_SIZE - 1)) != 0) {
    return invalid(why, "arena %d: start %p is not block-aligned", a->id, static_cast<const void*>(a->start));
  }
  const size_t bitmaps = a->is_pinned ? 2 : 4;
  if (a->meta_size < sizeof(Arena) + (bitmaps * a->field_count - 1) * sizeof(BitmapField)) {
    return invalid(why, "arena %d: its record (%zu bytes) is too small for %zu bitmaps of %zu fields", a->id,
                   a->meta_size, bitmaps, a->field_count);
  }
  if (a->blocks_dirty != &a->blocks_inuse[a->field_count]) {
    return invalid(why, "arena %d: the dirty bitmap is not where arena_add put it", a->id);
  }
  if (a->is_pinned != (a->blocks_committed == nullptr) || a->is_pinned != (a->blocks_purge == nullptr)) {
    return invalid(why, "arena %d: %s, but it %s committed and purge bitmaps", a->id,
                   a->is_pinned ? "pinned" : "not pinned", a->blocks_committed != nullptr ? "has" : "lacks");
  }
  if (!a->is_pinned && (a->blocks_committed != &a->blocks_inuse[2 * a->field_count] ||
                        a->blocks_purge != &a->blocks_inuse[3 * a->field_count])) {
    return invalid(why, "arena %d: the committed or purge bitmap is not where arena_add put it", a->id);
  }
  // Ours: bound to a node of the topology, or to none (-1). A program's own
  // memory (mi_manage_os_memory) may name any node: one we do not know is
  // counted as unbound (the account below).
  if (a->memid.kind != MemKind::external && (a->numa_node < -1 || a->numa_node >= topology().node_count)) {
    return invalid(why, "arena %d: node %d is not one of the topology's %d nodes", a->id, a->numa_node,
                   topology().node_count);
  }
  if (a->account != account_of_node(a->numa_node)) {
    return invalid(why, "arena %d: account %d is not node %d's (%d)", a->id, a->account, a->numa_node,
                   account_of_node(a->numa_node));
  }
  return true;
}

}  // namespace

bool arena_is_valid(const Arena* a, bool quiescent, Invalid* why) noexcept {
  if (a == nullptr) return invalid(why, "arena: null");
  if (!layout_is_valid(a, why)) return false;
  for (size_t f = 0; f < a->field_count; f++) {
    const uint64_t blocks = field_blocks(a, f);
    // Past the last block: permanently "in use" (no claim finds them), never
    // dirty, committed or waiting for a purge.
    if ((field_load(a->blocks_inuse, f) | blocks) != ~uint64_t{0}) {
      return invalid(why, "arena %d: a bit past its %zu blocks is clear in the in-use bitmap (field %zu)", a->id,
                     a->block_count, f);
    }
    const BitmapField* others[3] = {a->blocks_dirty, a->blocks_committed, a->blocks_purge};
    static constexpr const char* names[3] = {"dirty", "committed", "purge"};
    for (size_t k = 0; k < 3; k++) {
      if (others[k] != nullptr && (field_load(others[k], f) & ~blocks) != 0) {
        return invalid(why, "arena %d: a bit past its %zu blocks is set in the %s bitmap (field %zu)", a->id,
                       a->block_count, names[k], f);
      }
    }
    if (quiescent && a->blocks_purge != nullptr) {
      // dirty first: a purge clears a block's purge bit before its dirty
      // bit, so a purge running now cannot make this read wrong; only a
      // claim and a free of the block between the two loads could.
      const uint64_t dirty = field_load(a->blocks_dirty, f);
      const uint64_t purge = field_load(a->blocks_purge, f);
      if ((purge & ~dirty) != 0) {
        return invalid(why, "arena %d: block %zu waits for a purge but was never handed out (not dirty)", a->id,
                       f * BITMAP_FIELD_BITS + bit_scan_forward(purge & ~dirty));
      }
    }
  }
  return true;
}

bool arena_memory_is_held(const void* p, const MemId& memid, Invalid* why) noexcept {
  if (memid.kind != MemKind::arena) return true;
  const Arena* a = (memid.arena_index < ARENA_MAX_COUNT) ? arena_at(memid.arena_index) : nullptr;
  if (a == nullptr) return invalid(why, "memory at %p: arena index %u has no arena", p, memid.arena_index);
  const size_t idx = memid.block_index;
  const size_t n = memid.block_count;
  if (n == 0 || idx + n > a->block_count || arena_block_start(a, idx) != p) {
    return invalid(why, "memory at %p: blocks %zu..%zu are not that address of arena %d (%zu blocks at %p)", p, idx,
                   idx + n, a->id, a->block_count, static_cast<const void*>(a->start));
  }
  if (memid.is_pinned != a->is_pinned || memid.numa_node != a->numa_node) {
    return invalid(why, "memory at %p: its record (pinned %d, node %d) disagrees with arena %d (pinned %d, node %d)", p,
                   memid.is_pinned, memid.numa_node, a->id, a->is_pinned, a->numa_node);
  }
  if (!bitmap_is_all_set(a->blocks_inuse, a->field_count, idx, n)) {
    return invalid(why, "memory at %p: a block of %zu..%zu of arena %d is not in use", p, idx, idx + n, a->id);
  }
  if (!bitmap_is_all_set(a->blocks_dirty, a->field_count, idx, n)) {
    return invalid(why, "memory at %p: a block of %zu..%zu of arena %d is handed out but not dirty", p, idx, idx + n,
                   a->id);
  }
  if (a->blocks_purge != nullptr && bitmap_is_any_set(a->blocks_purge, a->field_count, idx, n)) {
    return invalid(why, "memory at %p: a block of %zu..%zu of arena %d waits for a purge while in use", p, idx, idx + n,
                   a->id);
  }
  if (a->blocks_committed != nullptr && memid.initially_committed &&
      !bitmap_is_all_set(a->blocks_committed, a->field_count, idx, n)) {
    return invalid(why, "memory at %p: came committed, but a block of %zu..%zu of arena %d is not committed", p, idx,
                   idx + n, a->id);
  }
  return true;
}

bool arenas_are_valid(bool quiescent, Invalid* why) noexcept {
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    const Arena* a = arena_at(i);
    if (a != nullptr && !arena_is_valid(a, quiescent, why)) return false;
  }
  return true;
}

size_t arena_blocks_in_use(size_t arena_index) noexcept {
  const Arena* a = (arena_index < ARENA_MAX_COUNT) ? arena_at(arena_index) : nullptr;
  if (a == nullptr) return 0;
  const size_t tail = a->field_count * BITMAP_FIELD_BITS - a->block_count;
  return bitmap_count_set(a->blocks_inuse, a->field_count) - tail;
}

}  // namespace mi
