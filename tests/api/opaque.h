// opaque.h: opaque(v) hides a value from the optimiser, so that deliberately
// odd arguments (sizes above PTRDIFF_MAX, NULL, alignments that are not
// powers of two, ...) neither trigger the compiler's warnings
// (-Walloc-size-larger-than, -Wnonnull) nor get folded at compile time: the
// call reaches the allocator as a program's would.
#pragma once

template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}
