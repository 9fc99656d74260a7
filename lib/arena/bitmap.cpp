// bitmap.cpp: see bitmap.h.
#include "bitmap.h"

#include "../common/defines.h"

namespace mi {

namespace {

// Calls f(field_index, mask) for each field the run [index, index+count) covers.
template <class F>
bool for_each_field(size_t index, size_t count, F&& f) {
  while (count > 0) {
    size_t field = index / BITMAP_FIELD_BITS;
    size_t bit = index % BITMAP_FIELD_BITS;
    size_t n = BITMAP_FIELD_BITS - bit;
    if (n > count) n = count;
    if (!f(field, bitmap_mask(bit, n))) return false;
    index += n;
    count -= n;
  }
  return true;
}

// Length of the run of zero bits starting at `index` (at most `limit`), from a
// relaxed snapshot.
size_t zero_run_length(const BitmapField* bitmap, size_t total_bits, size_t index, size_t limit) {
  size_t len = 0;
  while (len < limit && index + len < total_bits) {
    size_t pos = index + len;
    uint64_t v = bitmap[pos / BITMAP_FIELD_BITS].load(std::memory_order_relaxed) >> (pos % BITMAP_FIELD_BITS);
    size_t avail = BITMAP_FIELD_BITS - pos % BITMAP_FIELD_BITS;
    if (v == 0) {
      len += avail;
      continue;
    }
    size_t zeros = bit_scan_forward(v);
    len += (zeros < avail) ? zeros : avail;
    if (zeros < avail) break;
  }
  return (len > limit) ? limit : len;
}

}  // namespace

bool bitmap_try_claim(BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept {
  MI_ASSERT(index + count <= field_count * BITMAP_FIELD_BITS);
  (void)field_count;
  size_t claimed_upto = index;  // bits [index, claimed_upto) are ours, for rollback
  bool ok = for_each_field(index, count, [&](size_t field, uint64_t mask) {
    uint64_t cur = bitmap[field].load(std::memory_order_relaxed);
    do {
      if ((cur & mask) != 0) return false;
    } while (
        !bitmap[field].compare_exchange_weak(cur, cur | mask, std::memory_order_acq_rel, std::memory_order_relaxed));
    claimed_upto += static_cast<size_t>(__builtin_popcountll(mask));
    return true;
  });
  if (!ok && claimed_upto > index) bitmap_unclaim(bitmap, field_count, index, claimed_upto - index);
  return ok;
}

bool bitmap_try_find_claim(BitmapField* bitmap, size_t field_count, size_t start, size_t count,
                           size_t* index) noexcept {
  const size_t total = field_count * BITMAP_FIELD_BITS;
  if (count == 0 || count > total) return false;
  if (start >= total) start = 0;
  // Two passes: from `start` to the end, then from 0 to `start` (a run may not wrap).
  for (int pass = 0; pass < 2; pass++) {
    size_t pos = (pass == 0) ? start : 0;
    size_t end = (pass == 0) ? total : start + count - 1;
    if (end > total) end = total;
    while (pos + count <= end) {
      // skip whole fields that are full
      uint64_t fv = bitmap[pos / BITMAP_FIELD_BITS].load(std::memory_order_relaxed) >> (pos % BITMAP_FIELD_BITS);
      if (fv == (~uint64_t{0} >> (pos % BITMAP_FIELD_BITS))) {
        pos = align_up(pos + 1, BITMAP_FIELD_BITS);
        continue;
      }
      if ((fv & 1) != 0) {  // move to the next zero bit of this field
        size_t ones = bit_scan_forward(~fv);
        pos += ones;
        continue;
      }
      size_t run = zero_run_length(bitmap, total, pos, count);
      if (run < count) {
        pos += run + 1;  // bit pos+run is set (or the end): skip past it
        continue;
      }
      if (bitmap_try_claim(bitmap, field_count, pos, count)) {
        *index = pos;
        return true;
      }
      // lost a race: look again from the same position
      if (zero_run_length(bitmap, total, pos, count) < count) pos++;
    }
  }
  return false;
}

bool bitmap_claim(BitmapField* bitmap, size_t field_count, size_t index, size_t count, bool* any_set_before) noexcept {
  MI_ASSERT(index + count <= field_count * BITMAP_FIELD_BITS);
  (void)field_count;
  bool all_zero = true;
  bool any_one = false;
  for_each_field(index, count, [&](size_t field, uint64_t mask) {
    uint64_t prev = bitmap[field].fetch_or(mask, std::memory_order_acq_rel);
    if ((prev & mask) != 0) any_one = true;
    if ((prev & mask) != 0) all_zero = false;
    return true;
  });
  if (any_set_before != nullptr) *any_set_before = any_one;
  return all_zero;
}

bool bitmap_unclaim(BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept {
  MI_ASSERT(index + count <= field_count * BITMAP_FIELD_BITS);
  (void)field_count;
  bool all_one = true;
  for_each_field(index, count, [&](size_t field, uint64_t mask) {
    uint64_t prev = bitmap[field].fetch_and(~mask, std::memory_order_acq_rel);
    if ((prev & mask) != mask) all_one = false;
    return true;
  });
  return all_one;
}

bool bitmap_is_all_set(const BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept {
  (void)field_count;
  return for_each_field(index, count, [&](size_t field, uint64_t mask) {
    return (bitmap[field].load(std::memory_order_relaxed) & mask) == mask;
  });
}

bool bitmap_is_any_set(const BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept {
  (void)field_count;
  bool any = false;
  for_each_field(index, count, [&](size_t field, uint64_t mask) {
    if ((bitmap[field].load(std::memory_order_relaxed) & mask) != 0) any = true;
    return !any;
  });
  return any;
}

size_t bitmap_count_set(const BitmapField* bitmap, size_t field_count) noexcept {
  size_t n = 0;
  for (size_t i = 0; i < field_count; i++)
    n += static_cast<size_t>(__builtin_popcountll(bitmap[i].load(std::memory_order_relaxed)));
  return n;
}

}  // namespace mi
