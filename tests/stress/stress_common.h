/* tests/stress/stress_common.h -- small helpers shared by the stress programs.

   - Rng:          a fixed-seed splitmix64-seeded xorshift64* generator (no
                   std::random_device: every run of a stress test does the
                   same sequence of decisions per thread).
   - fill/check:   a block-content pattern derived from a 64-bit key; word 0
                   holds the high half of the key and the low 32 bits of the
                   block size, so a reader can recover the size of a block it
                   did not allocate and tell a corrupted header apart.  Blocks
                   up to 64 KiB are filled completely; larger ones completely
                   in their first and last 4 KiB and one word every 512 bytes
                   in between (touches every page, keeps huge blocks cheap).
   - fail():       print a message with the program name and abort (SIGABRT
                   leaves a core/backtrace to look at).
   - parse_args(): positional unsigned arguments with defaults and bounds.
   - rss_bytes():  resident set size from /proc/self/statm.
   - check_invariants(): between rounds, the library's walk of its own
                   structures (every arena, segment, and the calling
                   thread's heaps), in a build of ours with invariant
                   checks (-Dinvariants=true: the debug suites); nothing in
                   other builds or on another allocator.
   - xalloc:       an allocation front end that mixes the libc entry points
                   with mimalloc's when the program is built against a
                   mimalloc-compatible library (STRESS_HAVE_MIMALLOC=1), so
                   both the malloc override and the mi_* API are exercised.
                   Built without it (plain glibc), only libc entry points are
                   used, which is how the programs are checked to be correct
                   on an allocator other than ours.

   Every program must pass on any correct allocator. */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#ifndef STRESS_HAVE_MIMALLOC
#define STRESS_HAVE_MIMALLOC 0
#endif

/* STRESS_MI209_WORKAROUNDS: never set by meson.build.  Set (-D...=1) only to
   validate these programs themselves against Debian's mimalloc 2.0.9, which
   has two known bugs the programs would otherwise (rightly) report:
     1. blocks from aligned allocation with alignment 256 and a size that is
        a multiple of 256 are misaligned (upstream issue 700, fixed in 2.1);
     2. pages of abandoned segments that still hold live blocks are reclaimed
        into heaps made by mi_heap_new, so mi_heap_destroy frees other heaps'
        live blocks and mi_heap_visit_blocks reports them.
   With it, xalloc asks for alignments up to 128 only, and heap_stress ends
   heaps with mi_heap_delete instead of mi_heap_destroy and tolerates foreign
   blocks in visits (it still requires every live block to be visited). */
#ifndef STRESS_MI209_WORKAROUNDS
#define STRESS_MI209_WORKAROUNDS 0
#endif
#if STRESS_MI209_WORKAROUNDS
#define STRESS_MAX_ALIGN_SHIFT 7
#else
#define STRESS_MAX_ALIGN_SHIFT 9
#endif

#if STRESS_HAVE_MIMALLOC
#include <mimalloc.h>
#endif

namespace stress {

inline const char* g_prog = "stress";

/* ------------------------------------------------------------------------
   Failure reporting
------------------------------------------------------------------------ */
[[noreturn]] inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void fail(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%s: FAIL: %s\n", g_prog, buf);
  std::fflush(stderr);
  std::abort();
}

#define STRESS_CHECK(cond, ...)         \
  do {                                  \
    if (__builtin_expect(!(cond), 0)) { \
      ::stress::fail(__VA_ARGS__);      \
    }                                   \
  } while (0)

/* ------------------------------------------------------------------------
   The library's invariant walk (lib/heap/heap_check.h), where it has one
------------------------------------------------------------------------ */
#if STRESS_HAVE_MIMALLOC
}  // namespace stress
extern "C" bool mi_debug_check_invariants(bool quiescent, char* why, size_t why_size) __attribute__((weak));
namespace stress {
/* pre: no other thread of the program allocates or frees (between rounds,
   after the round's threads were joined). */
inline void check_invariants(const char* when) {
  if (&mi_debug_check_invariants == nullptr) return;
  char why[320];
  if (!mi_debug_check_invariants(true, why, sizeof why)) fail("allocator invariant broken %s: %s", when, why);
}
#else
inline void check_invariants(const char*) {}
#endif

/* ------------------------------------------------------------------------
   Random numbers: fixed seeds only
------------------------------------------------------------------------ */
inline uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(mix64(seed)) {
    if (s == 0) s = 0x2545F4914F6CDD1Dull;
  }
  uint64_t next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  /* uniform-ish in [0, n); n > 0 */
  uint64_t below(uint64_t n) { return (next() >> 11) % n; }
  /* uniform in [lo, hi] */
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  /* true with probability num/den */
  bool chance(uint64_t num, uint64_t den) { return below(den) < num; }
};

/* ------------------------------------------------------------------------
   Block content pattern
------------------------------------------------------------------------ */
constexpr size_t kFullFillLimit = 64 * 1024;  // blocks up to this size are filled completely
constexpr size_t kEdgeWords = 512;            // 4 KiB at each end of larger blocks
constexpr size_t kSparseStride = 64;          // one word every 512 bytes in between
constexpr size_t kNoError = SIZE_MAX;

inline uint64_t key_for(const void* p, size_t size, uint64_t salt = 0) {
  return mix64(reinterpret_cast<uintptr_t>(p) ^ (static_cast<uint64_t>(size) * 0xD6E8FEB86659FD93ull) ^ salt);
}

inline uint64_t pattern_word(uint64_t key, size_t size, size_t i) {
  if (i == 0) return (key & 0xFFFFFFFF00000000ull) | static_cast<uint32_t>(size);
  return key ^ (static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);  // == kPatternMul below
}

inline bool word_is_filled(size_t size, size_t i) {
  const size_t words = size / 8;  // index `words` is the partial tail word (always filled)
  if (size <= kFullFillLimit || words <= 2 * kEdgeWords) return true;
  return i < kEdgeWords || i >= words - kEdgeWords || (i % kSparseStride) == 0;
}

/* Calls f(lo, hi, step) for the ranges of filled word indices below nwords
   (nwords <= size / 8): indices lo, lo+step, ... < hi, in increasing order.
   Stops at the first call that returns something other than kNoError and
   returns that value.  (Ranges rather than single words keep the loops cheap
   in unoptimised debug builds.) */
template <class F>
inline size_t for_each_filled_range(size_t size, size_t nwords, F&& f) {
  const size_t words = size / 8;
  if (size <= kFullFillLimit || words <= 2 * kEdgeWords) return f(size_t{0}, nwords, size_t{1});
  static_assert(kEdgeWords % kSparseStride == 0, "sparse words must line up with the edges");
  size_t r = f(size_t{0}, nwords < kEdgeWords ? nwords : kEdgeWords, size_t{1});
  if (r != kNoError || nwords <= kEdgeWords) return r;
  const size_t tail_start = words - kEdgeWords;
  r = f(kEdgeWords, nwords < tail_start ? nwords : tail_start, kSparseStride);
  if (r != kNoError || nwords <= tail_start) return r;
  return f(tail_start, nwords, size_t{1});
}

constexpr uint64_t kPatternMul = 0x9E3779B97F4A7C15ull;  // pattern_word(i > 0) = key ^ (i * kPatternMul)

/* Fill `size` bytes at p with the pattern of `key` (size >= 8 for the header
   word to fit). */
inline void fill(void* p, size_t size, uint64_t key) {
  uint64_t* w = static_cast<uint64_t*>(p);
  const size_t words = size / 8;
  if (words > 0) w[0] = pattern_word(key, size, 0);
  for_each_filled_range(size, words, [&](size_t lo, size_t hi, size_t step) {
    if (lo == 0) lo = 1;  // the header word is written above
    uint64_t m = static_cast<uint64_t>(lo) * kPatternMul;
    const uint64_t dm = static_cast<uint64_t>(step) * kPatternMul;
    for (size_t i = lo; i < hi; i += step, m += dm) w[i] = key ^ m;
    return kNoError;
  });
  const size_t tail = size % 8;
  if (tail != 0) {
    const uint64_t t = pattern_word(key, size, words);
    std::memcpy(static_cast<unsigned char*>(p) + words * 8, &t, tail);
  }
}

/* Check the first `len` bytes (len <= size) of a block filled with
   fill(p, size, key).  Returns the offset of the first bad word, or kNoError;
   then expected/actual receive the expected/actual (partial) word there. */
inline size_t check(const void* p, size_t size, uint64_t key, size_t len, uint64_t* expected = nullptr,
                    uint64_t* actual = nullptr) {
  const uint64_t* w = static_cast<const uint64_t*>(p);
  const size_t full = len / 8;
  size_t bad = kNoError;
  if (full > 0 && w[0] != pattern_word(key, size, 0)) {
    bad = 0;
  } else {
    bad = for_each_filled_range(size, full, [&](size_t lo, size_t hi, size_t step) {
      if (lo == 0) lo = 1;
      uint64_t m = static_cast<uint64_t>(lo) * kPatternMul;
      const uint64_t dm = static_cast<uint64_t>(step) * kPatternMul;
      for (size_t i = lo; i < hi; i += step, m += dm) {
        if (w[i] != (key ^ m)) return i;
      }
      return kNoError;
    });
  }
  if (bad != kNoError) {
    if (expected) *expected = pattern_word(key, size, bad);
    if (actual) *actual = w[bad];
    return bad * 8;
  }
  const size_t rest = len % 8;
  if (rest != 0 && word_is_filled(size, full)) {
    const uint64_t e = pattern_word(key, size, full);
    uint64_t a = 0, em = 0;
    std::memcpy(&a, static_cast<const unsigned char*>(p) + full * 8, rest);
    std::memcpy(&em, &e, rest);
    if (a != em) {
      if (expected) *expected = em;
      if (actual) *actual = a;
      return full * 8;
    }
  }
  return kNoError;
}

/* Check and fail loudly. */
inline void check_or_die(const char* what, const void* p, size_t size, uint64_t key, size_t len) {
  uint64_t e = 0, a = 0;
  const size_t off = check(p, size, key, len, &e, &a);
  if (off != kNoError) {
    fail("%s: block %p (size %zu) corrupted at offset %zu (address %p): expected 0x%016" PRIx64 " found 0x%016" PRIx64,
         what, p, size, off, static_cast<const void*>(static_cast<const char*>(p) + off), e, a);
  }
}

/* Blocks whose pattern key is derived from their own address and size
   (key_for(p, size, salt)): the reader recovers the size from the header. */
inline void fill_self(void* p, size_t size, uint64_t salt = 0) { fill(p, size, key_for(p, size, salt)); }

/* Returns the block size recorded in the header, checking the whole block. */
inline size_t check_self_or_die(const char* what, const void* p, size_t max_size, uint64_t salt = 0) {
  uint64_t w0;
  std::memcpy(&w0, p, 8);
  const size_t size = static_cast<uint32_t>(w0);
  if (size < 8 || size > max_size) {
    fail("%s: block %p has a corrupted header 0x%016" PRIx64 " (size field %zu not in [8, %zu])", what, p, w0, size,
         max_size);
  }
  const uint64_t key = key_for(p, size, salt);
  if ((w0 >> 32) != (key >> 32)) {
    fail("%s: block %p has a corrupted header 0x%016" PRIx64 " (expected 0x%016" PRIx64 ")", what, p, w0,
         pattern_word(key, size, 0));
  }
  check_or_die(what, p, size, key, size);
  return size;
}

/* Blocks from calloc/zalloc must read as zero (same sparse policy as fill). */
inline void check_zero_or_die(const char* what, const void* p, size_t size) {
  const auto* b = static_cast<const unsigned char*>(p);
  const size_t words = size / 8;
  const uint64_t* w = static_cast<const uint64_t*>(p);
  const size_t bad = for_each_filled_range(size, words, [&](size_t lo, size_t hi, size_t step) {
    for (size_t i = lo; i < hi; i += step) {
      if (w[i] != 0) return i;
    }
    return kNoError;
  });
  if (bad != kNoError) {
    fail("%s: zeroed block %p (size %zu) is not zero at offset %zu: 0x%016" PRIx64, what, p, size, bad * 8, w[bad]);
  }
  for (size_t o = words * 8; o < size; o++) {
    if (b[o] != 0) fail("%s: zeroed block %p (size %zu) is not zero at offset %zu", what, p, size, o);
  }
}

/* ------------------------------------------------------------------------
   Allocation front end
------------------------------------------------------------------------ */
/* STRESS_MI_ONLY=1 (set by meson.build in a ThreadSanitizer build): the
   library replaces no libc symbol there (lib/override/override.cpp says
   why), so malloc and free are TSan's own; the libc entry points below then
   go to their mi_* equivalents, so every block still comes from the
   allocator under test. */
#ifndef STRESS_MI_ONLY
#define STRESS_MI_ONLY 0
#endif
#if STRESS_MI_ONLY && !STRESS_HAVE_MIMALLOC
#error "STRESS_MI_ONLY needs STRESS_HAVE_MIMALLOC"
#endif

inline void* libc_malloc(size_t size) {
#if STRESS_MI_ONLY
  return mi_malloc(size);
#else
  return std::malloc(size);
#endif
}
inline void* libc_calloc(size_t count, size_t size) {
#if STRESS_MI_ONLY
  return mi_calloc(count, size);
#else
  return std::calloc(count, size);
#endif
}
inline int libc_posix_memalign(void** p, size_t align, size_t size) {
#if STRESS_MI_ONLY
  return mi_posix_memalign(p, align, size);
#else
  return posix_memalign(p, align, size);
#endif
}
inline void* libc_realloc(void* p, size_t size) {
#if STRESS_MI_ONLY
  return mi_realloc(p, size);
#else
  return std::realloc(p, size);
#endif
}
inline void libc_free(void* p) {
#if STRESS_MI_ONLY
  mi_free(p);
#else
  std::free(p);
#endif
}

inline size_t usable_size(void* p) {
#if STRESS_HAVE_MIMALLOC
  return mi_usable_size(p);
#else
  return malloc_usable_size(p);
#endif
}

/* Allocate `size` bytes with a randomly chosen entry point; *zeroed tells
   whether the block is guaranteed zero-initialised.  Never returns NULL. */
inline void* xalloc(Rng& rng, size_t size, bool* zeroed) {
  void* p = nullptr;
  *zeroed = false;
  const unsigned how = static_cast<unsigned>(rng.below(16));
  switch (how) {
    case 0:
      p = libc_calloc(1, size);
      *zeroed = true;
      break;
    case 1: {
      const size_t align = size_t{16} << rng.below(STRESS_MAX_ALIGN_SHIFT - 3);  // 16..512
      if (libc_posix_memalign(&p, align, size) != 0) p = nullptr;
      if (p != nullptr && (reinterpret_cast<uintptr_t>(p) % align) != 0) {
        fail("posix_memalign(%zu, %zu) returned misaligned %p", align, size, p);
      }
      break;
    }
#if STRESS_HAVE_MIMALLOC
    case 2:
    case 3:
    case 4: p = mi_malloc(size); break;
    case 5:
      p = mi_zalloc(size);
      *zeroed = true;
      break;
    case 6: {
      const size_t align = size_t{8} << rng.below(STRESS_MAX_ALIGN_SHIFT - 2);  // 8..512
      p = mi_malloc_aligned(size, align);
      if (p != nullptr && (reinterpret_cast<uintptr_t>(p) % align) != 0) {
        fail("mi_malloc_aligned(%zu, %zu) returned misaligned %p", size, align, p);
      }
      break;
    }
#endif
    default: p = libc_malloc(size); break;
  }
  if (p == nullptr) fail("allocation of %zu bytes (entry point %u) returned NULL", size, how);
  if ((reinterpret_cast<uintptr_t>(p) % 8) != 0) fail("allocation of %zu bytes returned misaligned %p", size, p);
  return p;
}

inline void xfree(Rng& rng, void* p) {
#if STRESS_HAVE_MIMALLOC
  if (rng.chance(1, 3)) {
    mi_free(p);
    return;
  }
#else
  (void)rng;
#endif
  libc_free(p);
}

inline void* xrealloc(Rng& rng, void* p, size_t size) {
  const uintptr_t old = reinterpret_cast<uintptr_t>(p);
  void* q;
#if STRESS_HAVE_MIMALLOC
  if (rng.chance(1, 2)) {
    q = mi_realloc(p, size);
  } else {
    q = libc_realloc(p, size);
  }
#else
  (void)rng;
  q = libc_realloc(p, size);
#endif
  if (q == nullptr) fail("realloc(0x%" PRIxPTR ", %zu) returned NULL", old, size);
  return q;
}

/* ------------------------------------------------------------------------
   Misc
------------------------------------------------------------------------ */
inline size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

struct Timer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

struct Arg {
  const char* name;
  uint64_t* value;
  uint64_t min;
  uint64_t max;
  const char* help;
};

/* Positional unsigned arguments: prog [a [b [c ...]]].  Missing ones keep
   their defaults; -h/--help prints usage and exits 0; bad ones exit 2. */
inline void parse_args(int argc, char** argv, const char* what, std::initializer_list<Arg> args) {
  if (argc > 0 && argv[0] != nullptr) {
    const char* slash = std::strrchr(argv[0], '/');
    g_prog = slash ? slash + 1 : argv[0];
  }
  auto usage = [&](FILE* out) {
    std::fprintf(out, "usage: %s", g_prog);
    for (const Arg& a : args) std::fprintf(out, " [%s]", a.name);
    std::fprintf(out, "\n%s\n", what);
    for (const Arg& a : args) {
      std::fprintf(out, "  %-10s %s (default %" PRIu64 ", range %" PRIu64 "..%" PRIu64 ")\n", a.name, a.help, *a.value,
                   a.min, a.max);
    }
  };
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      std::exit(0);
    }
  }
  if (static_cast<size_t>(argc - 1) > args.size()) {
    usage(stderr);
    std::exit(2);
  }
  int i = 1;
  for (const Arg& a : args) {
    if (i >= argc) break;
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(argv[i], &end, 10);
    if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-' || v < a.min || v > a.max) {
      std::fprintf(stderr, "%s: bad value '%s' for %s\n", g_prog, argv[i], a.name);
      usage(stderr);
      std::exit(2);
    }
    *a.value = v;
    i++;
  }
}

}  // namespace stress

#endif  // STRESS_COMMON_H
