// bitmap.h: atomic bitmaps for claiming runs of arena blocks.
//
// Owns: the bit operations arenas use to hand out blocks to threads without
// locks. A bitmap is an array of 64-bit atomic fields; a run of `count` bits
// may straddle fields.
// Invariants: a run returned by bitmap_try_find_claim was all zero and is now
// all one, set by this caller alone; a run is released by exactly its claimer.
// Thread-safe: every operation is a CAS or an atomic and/or on fields; a claim
// of a run across fields sets field by field and rolls back on conflict.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mi {

using BitmapField = std::atomic<uint64_t>;
constexpr size_t BITMAP_FIELD_BITS = 64;

// Finds `count` consecutive zero bits, starting the search at bit `start`
// (wrapping around), and sets them atomically. true + *index on success.
bool bitmap_try_find_claim(BitmapField* bitmap, size_t field_count, size_t start, size_t count, size_t* index) noexcept;

// Sets the bits [index, index+count) if all of them are zero; false (nothing
// changed) otherwise.
bool bitmap_try_claim(BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept;

// Sets the bits; returns true if all were zero before. *any_set_before (may be
// null) tells if any was already one.
bool bitmap_claim(BitmapField* bitmap, size_t field_count, size_t index, size_t count, bool* any_set_before) noexcept;

// Clears the bits; returns true if all were one before.
bool bitmap_unclaim(BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept;

bool bitmap_is_all_set(const BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept;
bool bitmap_is_any_set(const BitmapField* bitmap, size_t field_count, size_t index, size_t count) noexcept;
size_t bitmap_count_set(const BitmapField* bitmap, size_t field_count) noexcept;

// Mask of `count` bits starting at bit `bit` of a field. pre: bit + count <= 64
inline uint64_t bitmap_mask(size_t bit, size_t count) {
  return (count >= 64) ? ~uint64_t{0} : (((uint64_t{1} << count) - 1) << bit);
}

}  // namespace mi
