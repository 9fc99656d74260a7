// defines.h: compiler attributes, build-level checks and size arithmetic.
//
// Owns: the macros every lib file uses. No state, no includes of other lib
// headers. Three tiers of checks (see docs/design.md, "Checks"):
//   - always on: bad input and OS failure are handled by code, never macros;
//   - MI_ASSERT: debug builds (MI_DEBUG) and invariant builds; cheap;
//   - MI_ASSERT_EXPENSIVE: invariant builds only (-Dinvariants=true); may walk
//     whole pages, queues and bitmaps.
// Release builds still type-check every assertion expression.
// The secure build (-Dsecure=true: MI_SECURE=1) hardens the heap's own
// metadata: encoded free-list links checked when popped, every free checked
// against its page's blocks and for a double free, plus what the `secure`
// option turns on in any build (guard pages, random free-list order, free
// lists checked when collected, abort on detected misuse). See
// heap/free_list.h, heap/misuse.h and README.md, "The hardened mode".
#pragma once

#include <cstddef>
#include <cstdint>

#define MI_LIKELY(x) __builtin_expect(!!(x), 1)
#define MI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MI_ALWAYS_INLINE inline __attribute__((always_inline))
#define MI_NOINLINE __attribute__((noinline))
// The library's own globals, on their extern declarations: the library is
// built with -fvisibility=hidden, but that applies to definitions only; a
// global declared without it is read through the GOT (the linker makes that
// a lea, still one instruction more than a load relative to the instruction
// pointer on every read: malloc_queue_first reads three of them).
#define MI_HIDDEN __attribute__((visibility("hidden")))
#define MI_CACHE_LINE 64

// ThreadSanitizer builds (gcc says __SANITIZE_THREAD__, clang has the feature).
#if defined(__SANITIZE_THREAD__)
#define MI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MI_TSAN 1
#endif
#endif
#if !defined(MI_TSAN)
#define MI_TSAN 0
#endif

#if !defined(MI_INVARIANTS)
#define MI_INVARIANTS 0
#endif
#if !defined(MI_SECURE)
#define MI_SECURE 0
#endif
#if !defined(MI_DEBUG)
#if MI_INVARIANTS || !defined(NDEBUG)
#define MI_DEBUG 1
#else
#define MI_DEBUG 0
#endif
#endif

namespace mi {
// Prints "assertion failed" with the location, without allocating, and aborts.
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* func) noexcept;
}  // namespace mi

#if MI_DEBUG
#define MI_ASSERT(expr) ((expr) ? (void)0 : ::mi::assert_fail(#expr, __FILE__, __LINE__, __func__))
#else
#define MI_ASSERT(expr) ((void)sizeof((expr) ? 1 : 0))
#endif

#if MI_INVARIANTS
#define MI_ASSERT_EXPENSIVE(expr) MI_ASSERT(expr)
#else
#define MI_ASSERT_EXPENSIVE(expr) ((void)sizeof((expr) ? 1 : 0))
#endif

namespace mi {

// The most NUMA nodes the allocator tells apart (the topology's tables, the
// per-node memory accounts and heaps, the config file's [node.N] tables):
// one constant, so that they agree. The kernel's node numbers may be higher
// (os_index); this counts the nodes in use.
constexpr int NUMA_MAX_NODES = 64;

constexpr size_t KiB = 1024;
constexpr size_t MiB = KiB * KiB;
constexpr size_t GiB = MiB * KiB;

constexpr bool is_power_of_two(uintptr_t x) { return x != 0 && (x & (x - 1)) == 0; }

// pre: alignment is a power of two
constexpr uintptr_t align_up(uintptr_t x, uintptr_t alignment) { return (x + alignment - 1) & ~(alignment - 1); }
constexpr uintptr_t align_down(uintptr_t x, uintptr_t alignment) { return x & ~(alignment - 1); }
inline void* align_up_ptr(void* p, size_t alignment) {
  return reinterpret_cast<void*>(align_up(reinterpret_cast<uintptr_t>(p), alignment));
}

constexpr size_t divide_up(size_t n, size_t d) { return (n + d - 1) / d; }

// Index of the highest set bit. pre: x != 0
inline unsigned bit_scan_reverse(uintptr_t x) { return 63u - static_cast<unsigned>(__builtin_clzll(x)); }
inline unsigned bit_scan_forward(uintptr_t x) { return static_cast<unsigned>(__builtin_ctzll(x)); }

// Multiplication with overflow check: true when count*size overflows.
inline bool mul_overflow(size_t count, size_t size, size_t* total) {
  return __builtin_mul_overflow(count, size, total);
}

}  // namespace mi
