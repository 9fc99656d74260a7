// api_fuzz.cpp: libFuzzer target for the allocator's API (mimalloc.h): the
// input is a sequence of calls, checked against a shadow of every live block.
//
// Each input is read as operations, one opcode byte and its argument bytes
// (an input that runs out reads zeros): allocation in every form (malloc,
// calloc, zalloc, the _n forms, aligned and _at, posix_memalign & co., the
// C++ forms, strdup), re-allocation (realloc, rezalloc, recalloc, reallocn,
// reallocarray, reallocarr, reallocf, the aligned forms, mi_new_realloc),
// mi_expand, frees (mi_free, the sized and aligned frees, cfree), frees by a
// second thread (cross-thread frees), heaps (mi_heap_new, one bound to a small
// exclusive arena, mi_heap_destroy, mi_heap_delete, allocation in a heap, a
// heap made the default for one call), mi_collect. Sizes come from classes
// (small, medium, large, huge) or from a table of edge values (SIZE_MAX - k,
// PTRDIFF_MAX, around ALLOC_SIZE_MAX), alignments and offsets likewise.
//
// The shadow: for each live block, its requested size, alignment, offset,
// heap, and a fill pattern (a byte per block and a stamp per 4 KiB) that is
// checked before it is freed or re-allocated and after every operation that
// keeps it. Checked on each call:
//   - a block holds the request: usable size >= size, (p + offset) aligned,
//     no overlap with any other live block, in its heap;
//   - calloc/zalloc/rezalloc/recalloc zero what they promise (a re-allocation
//     zeroes what the block grew by, for blocks that were zeroed from birth);
//   - realloc keeps the prefix, and a failed one leaves the block as it was;
//   - a failure is allowed only where it may happen: an invalid alignment
//     (EINVAL, one message), a request that can never be met (ENOMEM, no
//     message at all: lib/common/types.h ALLOC_SIZE_MAX), a count * size that
//     overflows (the same), a large request or a full arena (ENOMEM, exactly
//     one message); requests up to 64 MiB outside the arena must succeed;
//   - nothing else prints anything (the output callback counts every message;
//     max_warnings and max_errors are -1).
// A failed check prints what was wrong and aborts (the input is kept by
// libFuzzer; replay it with api_fuzz_replay FILE; API_FUZZ_TRACE=1 in the
// environment prints each operation).
//
// Built twice (tests/fuzz/meson.build): api_fuzz_replay in every build
// replays the corpus (corpus/api/) against the library as users link it; the
// libFuzzer executable (clang, -Dfuzz=true) compiles the allocator's sources
// with ASan, UBSan and coverage, without the malloc/new override, which ASan
// keeps for itself (this file's own containers use ASan's malloc).
#include <errno.h>
#include <mimalloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// Failing
// ---------------------------------------------------------------------------
int g_op_index = 0;          // operation number in this input
const char* g_op_name = "";  // the call being checked

#define FUZZ_CHECK(cond, ...)                                \
  do {                                                       \
    if (!(cond)) check_failed(__LINE__, #cond, __VA_ARGS__); \
  } while (0)

[[noreturn]] __attribute__((format(printf, 3, 4))) void check_failed(int line, const char* cond, const char* fmt, ...) {
  fprintf(stderr, "api_fuzz.cpp:%d: check failed: %s\n  operation %d, %s: ", line, cond, g_op_index, g_op_name);
  va_list args;
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fprintf(stderr, "\n");
  abort();
}

// ---------------------------------------------------------------------------
// Messages: every line the allocator prints comes here
// ---------------------------------------------------------------------------
std::atomic<int> g_messages{0};
char g_last_message[512];

void on_output(const char* msg, void*) {
  g_messages.fetch_add(1, std::memory_order_relaxed);
  snprintf(g_last_message, sizeof(g_last_message), "%s", msg);
}

// ---------------------------------------------------------------------------
// The limits the API documents (lib/common/types.h)
// ---------------------------------------------------------------------------
constexpr size_t MiB = size_t{1} << 20;
constexpr size_t kAllocSizeMax = (size_t{1} << 46) - 4 * MiB;  // ALLOC_SIZE_MAX
constexpr size_t kMustSucceed = 64 * MiB;  // requests up to this (size + alignment) outside the arena succeed
constexpr size_t kLiveMax = 96 * MiB;      // the shadow keeps at most this much live
constexpr size_t kArenaSize = 32 * MiB;    // the exclusive arena of the arena heap

bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
bool possible(size_t size, size_t align) { return size <= kAllocSizeMax && align <= kAllocSizeMax - size; }

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------
struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool done() const { return pos >= size; }
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | (byte() << 8)); }
};

const size_t kEdgeSizes[] = {0,
                             1,
                             7,
                             8,
                             15,
                             16,
                             63,
                             64,
                             65,
                             127,
                             128,
                             1023,
                             1024,
                             1025,
                             4095,
                             4096,
                             4097,
                             16384,
                             16385,
                             131072,
                             131073,
                             2 * MiB - 8,
                             2 * MiB,
                             2 * MiB + 1,
                             4 * MiB,
                             kAllocSizeMax - 4096,
                             kAllocSizeMax,
                             kAllocSizeMax + 1,
                             size_t{1} << 46,
                             static_cast<size_t>(PTRDIFF_MAX),
                             static_cast<size_t>(PTRDIFF_MAX) + 1,
                             SIZE_MAX / 2 + 7,
                             SIZE_MAX - 65536,
                             SIZE_MAX - 4095,
                             SIZE_MAX - 64,
                             SIZE_MAX - 63,
                             SIZE_MAX - 62,
                             SIZE_MAX - 1,
                             SIZE_MAX};
constexpr size_t kEdgeSizeCount = sizeof(kEdgeSizes) / sizeof(kEdgeSizes[0]);

// Mostly small sizes; a few large and huge ones; an edge value now and then.
size_t take_size(Input& in) {
  const uint8_t a = in.byte();
  const uint8_t b = in.byte();
  switch (a >> 5) {
    case 0:
    case 1: return b;                                        // 0 .. 255
    case 2: return static_cast<size_t>(b) * 4 + (a & 3);     // .. 1 KiB
    case 3: return static_cast<size_t>(b) * 64 + (a & 31);   // .. 16 KiB
    case 4: return static_cast<size_t>(b) * 512 + (a & 31);  // medium
    case 5:
      return (a & 16) ? static_cast<size_t>(b) * 8192 + (a & 15) : static_cast<size_t>(b) * 1024 + (a & 15);  // large
    case 6: return (a & 31) == 0 ? 2 * MiB + static_cast<size_t>(b) * 16384 : b + 1;  // huge, now and then
    default: return kEdgeSizes[b % kEdgeSizeCount];
  }
}

const size_t kAlignments[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 4096, 8192, 65536, 131072, MiB, 4 * MiB,
                              // edges: not powers of two, then powers of two too large to be met
                              0, 3, 24, 65535, SIZE_MAX, size_t{1} << 45, size_t{1} << 62, size_t{1} << 63};
constexpr size_t kAlignmentCount = sizeof(kAlignments) / sizeof(kAlignments[0]);
constexpr size_t kValidAlignmentCount = 16;

size_t take_alignment(Input& in, bool edges) {
  const uint8_t a = in.byte();
  if (edges && a >= 240) return kAlignments[kValidAlignmentCount + a % (kAlignmentCount - kValidAlignmentCount)];
  return kAlignments[a % kValidAlignmentCount];
}

const size_t kEdgeOffsets[] = {static_cast<size_t>(PTRDIFF_MAX),
                               static_cast<size_t>(PTRDIFF_MAX) + 1,
                               SIZE_MAX - 62,
                               SIZE_MAX - 63,
                               SIZE_MAX - 64,
                               SIZE_MAX - 4095,
                               SIZE_MAX};

size_t take_offset(Input& in) {
  const uint8_t a = in.byte();
  if (a < 224) return a;
  return kEdgeOffsets[a % (sizeof(kEdgeOffsets) / sizeof(kEdgeOffsets[0]))];
}

// A count and an element size whose product is about `size` (or overflows).
void take_count(Input& in, size_t size, size_t* count, size_t* elem) {
  const uint8_t a = in.byte();
  if (a >= 248) {  // overflowing, or at the edge
    static const size_t kCounts[] = {SIZE_MAX, SIZE_MAX / 2 + 1, size_t{1} << 32, 3, 2, 0, 1, size_t{1} << 33};
    *count = kCounts[a % 8];
    *elem = (a & 1) ? SIZE_MAX / 3 + 1 : (size_t{1} << 32) + 1;
    return;
  }
  *count = 1 + a % 16;
  *elem = size / *count;
}

// ---------------------------------------------------------------------------
// The shadow
// ---------------------------------------------------------------------------
constexpr int kSlots = 64;
constexpr int kHeaps = 4;

struct Heap {
  mi_heap_t* heap = nullptr;
  bool in_arena = false;  // bound to the exclusive arena: may run out
  bool destroyable = false;
};
Heap g_heaps[kHeaps];
mi_arena_id_t g_arena = 0;  // the exclusive arena (0: none could be reserved)

struct Block {
  void* p = nullptr;
  size_t size = 0;
  size_t usable = 0;
  size_t align = 0;  // 0: none asked for
  size_t offset = 0;
  int heap = -1;        // index in g_heaps, -1: the thread's backing heap
  bool zeroed = false;  // allocated zeroed, and only zeroing re-allocations since
  size_t dirty = 0;     // bytes the program has written (a zeroed block is zero past them)
  uint64_t id = 0;
};
Block g_slots[kSlots];
std::map<uintptr_t, uintptr_t> g_ranges;  // live blocks: start -> end of their usable bytes
size_t g_live_bytes = 0;
uint64_t g_next_id = 1;

// The pattern: byte i of a block is uint8(id * 131 + i / 4096), except the
// first 8 bytes of each 4 KiB, which hold id ^ (i / 4096).
uint8_t pattern_byte(uint64_t id, size_t chunk) { return static_cast<uint8_t>(id * 131 + chunk); }
uint8_t uniform[256][4096];  // uniform[v]: 4096 bytes of v

void fill(void* p, size_t n, uint64_t id) {
  uint8_t* b = static_cast<uint8_t*>(p);
  for (size_t at = 0, chunk = 0; at < n; at += 4096, chunk++) {
    const size_t len = (n - at < 4096) ? n - at : 4096;
    memset(b + at, pattern_byte(id, chunk), len);
    const uint64_t stamp = id ^ chunk;
    memcpy(b + at, &stamp, len < 8 ? len : 8);
  }
}

// The first n bytes of p hold the pattern of block `id`: the first wrong
// offset, or n.
size_t pattern_mismatch(const void* p, size_t n, uint64_t id) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t at = 0, chunk = 0; at < n; at += 4096, chunk++) {
    const size_t len = (n - at < 4096) ? n - at : 4096;
    const uint64_t stamp = id ^ chunk;
    const size_t head = len < 8 ? len : 8;
    if (memcmp(b + at, &stamp, head) != 0 || memcmp(b + at + head, uniform[pattern_byte(id, chunk)], len - head) != 0) {
      for (size_t i = 0; i < len; i++) {
        const uint8_t want = (i < 8) ? reinterpret_cast<const uint8_t*>(&stamp)[i] : pattern_byte(id, chunk);
        if (b[at + i] != want) return at + i;
      }
    }
  }
  return n;
}

bool all_zero(const void* p, size_t from, size_t to) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t at = from; at < to; at += 4096) {
    const size_t len = (to - at < 4096) ? to - at : 4096;
    if (memcmp(b + at, uniform[0], len) != 0) return false;
  }
  return true;
}

mi_heap_t* heap_of(int h) { return h < 0 ? mi_heap_get_backing() : g_heaps[h].heap; }

void check_contents(const Block& b) {
  const size_t bad = pattern_mismatch(b.p, b.size, b.id);
  FUZZ_CHECK(bad == b.size, "block %p (size %zu, alignment %zu, offset %zu) changed at byte %zu", b.p, b.size, b.align,
             b.offset, bad);
}

// Checks a live block: contents, usable size, alignment, heap, ownership.
void check_block(const Block& b) {
  check_contents(b);
  FUZZ_CHECK(mi_usable_size(b.p) == b.usable, "block %p: usable size %zu, was %zu", b.p, mi_usable_size(b.p), b.usable);
  FUZZ_CHECK(mi_heap_contains_block(heap_of(b.heap), b.p), "block %p is not in its heap %d", b.p, b.heap);
  FUZZ_CHECK(mi_is_in_heap_region(b.p), "block %p is outside the heap region", b.p);
}

// A new block in the shadow: it must hold the request and overlap no other.
void admit(int slot, void* p, size_t size, size_t align, size_t offset, int heap, bool zeroed, bool check_zero = true) {
  Block& b = g_slots[slot];
  FUZZ_CHECK(b.p == nullptr, "slot %d is taken", slot);
  const size_t usable = mi_usable_size(p);
  FUZZ_CHECK(usable >= size, "a short block: %p of %zu usable bytes for a request of %zu (alignment %zu, offset %zu)",
             p, usable, size, align, offset);
  if (align > 0) {
    FUZZ_CHECK((reinterpret_cast<uintptr_t>(p) + offset) % align == 0, "%p + %zu is not aligned to %zu", p, offset,
               align);
  } else {
    FUZZ_CHECK(reinterpret_cast<uintptr_t>(p) % sizeof(void*) == 0, "%p is not aligned to a word", p);
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(p), end = start + usable;
  auto next = g_ranges.lower_bound(start);
  FUZZ_CHECK(next == g_ranges.end() || next->first >= end || (usable == 0 && next->first > start),
             "%p (%zu bytes) overlaps the live block at %p", p, usable, reinterpret_cast<void*>(next->first));
  if (next != g_ranges.begin()) {
    auto prev = std::prev(next);
    FUZZ_CHECK(prev->second <= start, "%p overlaps the live block at %p (to %p)", p,
               reinterpret_cast<void*>(prev->first), reinterpret_cast<void*>(prev->second));
  }
  FUZZ_CHECK(mi_heap_contains_block(heap_of(heap), p), "new block %p is not in heap %d", p, heap);
  if (zeroed && check_zero) FUZZ_CHECK(all_zero(p, 0, size), "block %p of %zu bytes is not zeroed", p, size);
  g_ranges[start] = end;
  b = Block{p, size, usable, align, offset, heap, zeroed, 0, g_next_id++};
  fill(p, size, b.id);
  b.dirty = size;
  g_live_bytes += size;
}

// The shadow forgets a block (before it is freed).
Block retire(int slot) {
  Block b = g_slots[slot];
  g_ranges.erase(reinterpret_cast<uintptr_t>(b.p));
  g_live_bytes -= b.size;
  g_slots[slot] = Block{};
  return b;
}

// ---------------------------------------------------------------------------
// The second thread: frees the blocks it is handed
// ---------------------------------------------------------------------------
struct Freer {
  std::mutex lock;
  std::condition_variable wake, idle;
  std::vector<void*> queue;
  bool busy = false;
  void run() {
    std::unique_lock<std::mutex> g(lock);
    for (;;) {
      wake.wait(g, [&] { return !queue.empty(); });
      std::vector<void*> batch;
      batch.swap(queue);
      busy = true;
      g.unlock();
      for (void* p : batch) mi_free(p);  // while the main thread goes on
      g.lock();
      busy = false;
      idle.notify_all();
    }
  }
  void hand(void* p) {
    std::lock_guard<std::mutex> g(lock);
    queue.push_back(p);
    wake.notify_one();
  }
  void sync() {
    std::unique_lock<std::mutex> g(lock);
    idle.wait(g, [&] { return queue.empty() && !busy; });
  }
};
Freer* g_freer = nullptr;

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------
enum class Expect {
  block,       // must succeed
  maybe,       // may run out: a block, or NULL with ENOMEM and one message
  impossible,  // NULL with ENOMEM, no message
  invalid,     // NULL with EINVAL (messages: as the caller says)
};

const char* expect_name(Expect e) {
  switch (e) {
    case Expect::block: return "must succeed";
    case Expect::maybe: return "may fail";
    case Expect::impossible: return "can never be met";
    case Expect::invalid: return "invalid";
  }
  return "?";
}

// What a request of `size` at `align` (0: none) from heap h may do.
Expect expect_for(size_t size, size_t align, int h) {
  if (!possible(size, align)) return Expect::impossible;
  const bool arena = h >= 0 && g_heaps[h].in_arena;
  if (size <= kMustSucceed && align <= kMustSucceed - size && !arena) return Expect::block;
  return Expect::maybe;
}
Expect expect_aligned(size_t size, size_t align, int h) {
  if (!is_pow2(align)) return Expect::invalid;
  return expect_for(size, align, h);
}
Expect expect_n(size_t count, size_t elem, size_t align, int h) {
  size_t total;
  if (__builtin_mul_overflow(count, elem, &total)) return Expect::impossible;
  return expect_for(total, align, h);
}

// Checks a call's failure against what was expected. `messages`: how many
// the call printed; `invalid_messages`: how many an invalid alignment prints
// in this form (1 through the aligned path; 0 where the form checks first).
void check_failure(Expect e, int err, int messages, int invalid_messages = 1) {
  switch (e) {
    case Expect::block:
      FUZZ_CHECK(false, "a request that must succeed failed (errno %d; last message: %s)", err, g_last_message);
      return;
    case Expect::maybe:
      FUZZ_CHECK(err == ENOMEM, "errno %d, ENOMEM expected", err);
      FUZZ_CHECK(messages == 1, "%d messages for a failed request, one expected (last: %s)", messages, g_last_message);
      return;
    case Expect::impossible:
      FUZZ_CHECK(err == ENOMEM, "errno %d for a request that can never be met, ENOMEM expected", err);
      FUZZ_CHECK(messages == 0, "a request that can never be met printed %d messages (last: %s)", messages,
                 g_last_message);
      return;
    case Expect::invalid:
      FUZZ_CHECK(err == EINVAL, "errno %d for an invalid alignment, EINVAL expected", err);
      FUZZ_CHECK(messages == invalid_messages, "%d messages for an invalid alignment, %d expected (last: %s)", messages,
                 invalid_messages, g_last_message);
      return;
  }
}

void check_success(Expect e, int messages) {
  FUZZ_CHECK(e == Expect::block || e == Expect::maybe, "a request that %s succeeded", expect_name(e));
  FUZZ_CHECK(messages == 0, "a successful call printed %d messages (last: %s)", messages, g_last_message);
}

// Calls f with errno cleared; its result, errno and the messages it printed.
struct Call {
  void* p;
  int err;
  int messages;
};
template <class F>
Call call(F f) {
  const int before = g_messages.load(std::memory_order_relaxed);
  errno = 0;
  void* p = f();
  const int err = errno;
  return Call{p, err, g_messages.load(std::memory_order_relaxed) - before};
}

// A block the shadow does not keep (too large to fill): checked and freed.
bool keep_size(size_t size) { return size <= kMustSucceed && g_live_bytes + size <= kLiveMax; }

void free_slot(int slot) {
  if (g_slots[slot].p == nullptr) return;
  check_block(g_slots[slot]);
  Block b = retire(slot);
  mi_free(b.p);
}

// The outcome of an allocation into `slot` (empty).
void settle(int slot, const char* what, Call c, Expect e, size_t size, size_t align, size_t offset, int heap,
            bool zeroed, int invalid_messages = 1) {
  g_op_name = what;
  if (c.p == nullptr) {
    check_failure(e, c.err, c.messages, invalid_messages);
    return;
  }
  check_success(e, c.messages);
  if (size > kMustSucceed) {  // too large to fill: what can be checked without touching it
    FUZZ_CHECK(mi_usable_size(c.p) >= size, "a short block: %zu usable bytes for %zu", mi_usable_size(c.p), size);
    mi_free(c.p);
    return;
  }
  admit(slot, c.p, size, align, offset, heap, zeroed);
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------
int take_slot(Input& in) { return in.byte() % kSlots; }

// Allocation in the default heap, plain and C++ forms.
void op_alloc(Input& in) {
  const int slot = take_slot(in);
  free_slot(slot);
  const uint8_t form = in.byte();
  size_t size = take_size(in);
  size_t count = 1, elem = size;
  take_count(in, size, &count, &elem);
  if (!keep_size(size) && size <= kMustSucceed) size = 64;  // keep the live total bounded
  const Expect e = expect_for(size, 0, -1);
  switch (form % 14) {
    case 0: settle(slot, "mi_malloc", call([&] { return mi_malloc(size); }), e, size, 0, 0, -1, false); break;
    case 1: settle(slot, "mi_zalloc", call([&] { return mi_zalloc(size); }), e, size, 0, 0, -1, true); break;
    case 2:
      if (!keep_size(count * elem)) count = 1, elem = 64;
      settle(slot, "mi_calloc", call([&] { return mi_calloc(count, elem); }), expect_n(count, elem, 0, -1),
             count * elem, 0, 0, -1, true);
      break;
    case 3:
      if (!keep_size(count * elem)) count = 1, elem = 64;
      settle(slot, "mi_mallocn", call([&] { return mi_mallocn(count, elem); }), expect_n(count, elem, 0, -1),
             count * elem, 0, 0, -1, false);
      break;
    case 4: {
      const size_t small = size % 1025;
      settle(slot, "mi_malloc_small", call([&] { return mi_malloc_small(small); }), Expect::block, small, 0, 0, -1,
             false);
      break;
    }
    case 5: {
      const size_t small = size % 1025;
      settle(slot, "mi_zalloc_small", call([&] { return mi_zalloc_small(small); }), Expect::block, small, 0, 0, -1,
             true);
      break;
    }
    case 6: settle(slot, "mi_new_nothrow", call([&] { return mi_new_nothrow(size); }), e, size, 0, 0, -1, false); break;
    case 7:
    case 8: {
      // the throwing forms: bad_alloc where the others return NULL (errno is not theirs to set)
      const bool n = form % 14 == 8;
      const Expect en = n ? expect_n(count, elem, 0, -1) : e;
      const size_t total = n ? count * elem : size;
      const int before = g_messages.load(std::memory_order_relaxed);
      void* p = nullptr;
      bool array_length = false, thrown = false;
      try {
        p = n ? mi_new_n(count, elem) : mi_new(size);
      } catch (const std::bad_array_new_length&) {
        thrown = array_length = true;
      } catch (const std::bad_alloc&) {
        thrown = true;
      }
      const int messages = g_messages.load(std::memory_order_relaxed) - before;
      g_op_name = n ? "mi_new_n" : "mi_new";
      size_t product;
      const bool overflow = n && __builtin_mul_overflow(count, elem, &product);
      FUZZ_CHECK(array_length == overflow, "bad_array_new_length %d for a count overflow %d", array_length, overflow);
      if (thrown) {
        check_failure(en, ENOMEM, messages);
      } else {
        settle(slot, g_op_name, Call{p, 0, messages}, en, total, 0, 0, -1, false);
      }
      break;
    }
    case 9: {
      const size_t align = take_alignment(in, true);
      void* p = reinterpret_cast<void*>(uintptr_t{8});
      const int before = g_messages.load(std::memory_order_relaxed);
      errno = 12345;
      const int rc = mi_posix_memalign(&p, align, size);
      const int messages = g_messages.load(std::memory_order_relaxed) - before;
      g_op_name = "mi_posix_memalign";
      FUZZ_CHECK(errno == 12345, "posix_memalign changed errno to %d", errno);
      const Expect ea = (align % sizeof(void*) != 0) ? Expect::invalid : expect_aligned(size, align, -1);
      if (rc != 0) {
        FUZZ_CHECK(p == reinterpret_cast<void*>(uintptr_t{8}), "posix_memalign changed *p on failure");
        check_failure(ea, rc, messages, 0);  // it checks the alignment first, without a message
      } else {
        settle(slot, g_op_name, Call{p, 0, messages}, ea, size, align, 0, -1, false);
      }
      break;
    }
    case 10: {
      const size_t align = take_alignment(in, true);
      settle(slot, "mi_aligned_alloc", call([&] { return mi_aligned_alloc(align, size); }),
             expect_aligned(size, align, -1), size, align, 0, -1, false, 0);
      break;
    }
    case 11: {
      const size_t align = take_alignment(in, true);
      settle(slot, "mi_memalign", call([&] { return mi_memalign(align, size); }), expect_aligned(size, align, -1), size,
             align, 0, -1, false);
      break;
    }
    case 12: {
      const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      if (form & 128) {
        settle(slot, "mi_valloc", call([&] { return mi_valloc(size); }), expect_for(size, ps, -1), size, ps, 0, -1,
               false);
      } else {
        const size_t rounded = possible(size, ps) ? (size + ps - 1) / ps * ps : SIZE_MAX;
        settle(slot, "mi_pvalloc", call([&] { return mi_pvalloc(size); }), expect_for(size, ps, -1), rounded, ps, 0, -1,
               false);
      }
      break;
    }
    case 13: {
      // strdup/strndup of a string of (size % 300) bytes
      char text[301];
      const size_t len = size % 300;
      memset(text, 'a' + static_cast<int>(len % 26), len);
      text[len] = 0;
      const bool nd = form & 128;
      const size_t n = nd ? (size % 2 ? len / 2 : SIZE_MAX) : len;
      Call c = call([&] { return nd ? mi_strndup(text, n) : mi_strdup(text); });
      g_op_name = nd ? "mi_strndup" : "mi_strdup";
      FUZZ_CHECK(c.p != nullptr && c.messages == 0, "strdup failed");
      const size_t want = nd && n < len ? n : len;
      FUZZ_CHECK(strlen(static_cast<char*>(c.p)) == want && memcmp(c.p, text, want) == 0, "strdup copied wrongly");
      admit(slot, c.p, want + 1, 0, 0, -1, false);
      break;
    }
  }
}

// Aligned allocation, plain and _at.
void op_alloc_aligned(Input& in) {
  const int slot = take_slot(in);
  free_slot(slot);
  const uint8_t form = in.byte();
  size_t size = take_size(in);
  const size_t align = take_alignment(in, true);
  const size_t offset = (form & 1) ? take_offset(in) : 0;
  if (!keep_size(size) && size <= kMustSucceed) size = 64;
  const Expect e = expect_aligned(size, align, -1);
  switch ((form >> 1) % 5) {
    case 0:
      settle(slot, "mi_malloc_aligned_at", call([&] { return mi_malloc_aligned_at(size, align, offset); }), e, size,
             align, offset, -1, false);
      break;
    case 1:
      settle(slot, "mi_zalloc_aligned_at", call([&] { return mi_zalloc_aligned_at(size, align, offset); }), e, size,
             align, offset, -1, true);
      break;
    case 2: {
      size_t count, elem;
      take_count(in, size, &count, &elem);
      if (!keep_size(count * elem)) count = 1, elem = 64;
      const Expect en = is_pow2(align) ? expect_n(count, elem, align, -1) : Expect::invalid;
      // a count overflow is found before the alignment is looked at
      size_t product;
      const Expect first = __builtin_mul_overflow(count, elem, &product) ? Expect::impossible : en;
      settle(slot, "mi_calloc_aligned_at", call([&] { return mi_calloc_aligned_at(count, elem, align, offset); }),
             first, count * elem, align, offset, -1, true);
      break;
    }
    case 3:
      settle(slot, "mi_malloc_aligned", call([&] { return mi_malloc_aligned(size, align); }), e, size, align, 0, -1,
             false);
      break;
    case 4:
      settle(slot, "mi_new_aligned_nothrow", call([&] { return mi_new_aligned_nothrow(size, align); }), e, size, align,
             0, -1, false);
      break;
  }
}

// Re-allocation of a live block (or of NULL, for an empty slot).
void op_realloc(Input& in) {
  const int slot = take_slot(in);
  const uint8_t form = in.byte();
  size_t size = take_size(in);
  size_t count, elem;
  take_count(in, size, &count, &elem);
  size_t align = 0, offset = 0;
  Block old = g_slots[slot];
  if (old.p != nullptr) check_block(old);
  const size_t old_size = old.size;
  if (!keep_size(size > old_size ? size - old_size : 0) && size <= kMustSucceed) size = 64;
  if (!keep_size(count * elem > old_size ? count * elem - old_size : 0) && count * elem <= kMustSucceed)
    count = 1, elem = 64;
  // (from_heap: the heap a moved block lands in; -1 the default)
  int to_heap = -1;
  bool zero = false, counted = false, reallocf = false, aligned = false;
  Call c{};
  const int kind = form % 12;
  if (kind >= 7 && kind <= 9) {
    align = take_alignment(in, false);  // valid alignments: a bad one is the allocation forms' case
    offset = (form & 128) ? take_offset(in) : 0;
    aligned = true;
  }
  switch (kind) {
    case 0:
      g_op_name = "mi_realloc";
      c = call([&] { return mi_realloc(old.p, size); });
      break;
    case 1:
      g_op_name = "mi_rezalloc";
      zero = true;
      c = call([&] { return mi_rezalloc(old.p, size); });
      break;
    case 2:
      g_op_name = "mi_recalloc";
      zero = counted = true;
      c = call([&] { return mi_recalloc(old.p, count, elem); });
      break;
    case 3:
      g_op_name = "mi_reallocn";
      counted = true;
      c = call([&] { return mi_reallocn(old.p, count, elem); });
      break;
    case 4:
      g_op_name = "mi_reallocarray";
      counted = true;
      c = call([&] { return mi_reallocarray(old.p, count, elem); });
      break;
    case 5: {
      g_op_name = "mi_reallocarr";
      counted = true;
      void* p = old.p;
      const int before = g_messages.load(std::memory_order_relaxed);
      const int rc = mi_reallocarr(&p, count, elem);
      const int messages = g_messages.load(std::memory_order_relaxed) - before;
      if (rc != 0) FUZZ_CHECK(p == old.p, "reallocarr changed the pointer on failure");
      c = Call{rc == 0 ? p : nullptr, rc, messages};
      break;
    }
    case 6:
      g_op_name = "mi_reallocf";
      reallocf = true;
      c = call([&] { return mi_reallocf(old.p, size); });
      break;
    case 7:
      g_op_name = "mi_realloc_aligned_at";
      c = call([&] { return mi_realloc_aligned_at(old.p, size, align, offset); });
      break;
    case 8:
      g_op_name = "mi_rezalloc_aligned_at";
      zero = true;
      c = call([&] { return mi_rezalloc_aligned_at(old.p, size, align, offset); });
      break;
    case 9:
      g_op_name = "mi_recalloc_aligned_at";
      zero = counted = true;
      c = call([&] { return mi_recalloc_aligned_at(old.p, count, elem, align, offset); });
      break;
    case 10: {
      // in a heap of ours (the block moves there if it moves)
      const int h = in.byte() % kHeaps;
      if (g_heaps[h].heap == nullptr) return;
      to_heap = h;
      g_op_name = "mi_heap_realloc";
      c = call([&] { return mi_heap_realloc(g_heaps[h].heap, old.p, size); });
      break;
    }
    case 11: {
      g_op_name = "mi_new_realloc";
      const int before = g_messages.load(std::memory_order_relaxed);
      void* p = nullptr;
      bool thrown = false;
      try {
        p = mi_new_realloc(old.p, size);
      } catch (const std::bad_alloc&) {
        thrown = true;
      }
      c = Call{thrown ? nullptr : p, ENOMEM, g_messages.load(std::memory_order_relaxed) - before};
      break;
    }
  }
  const size_t newsize = counted ? count * elem : size;
  size_t product;
  // (the aligned forms re-allocate plainly for an alignment of a word or less at offset 0, as mimalloc's)
  const size_t asked_align = (aligned && !(align <= sizeof(void*) && offset == 0)) ? align : 0;
  const Expect e = counted && __builtin_mul_overflow(count, elem, &product) ? Expect::impossible
                                                                            : expect_for(newsize, asked_align, to_heap);
  if (c.p == nullptr) {
    check_failure(e, c.err, c.messages);
    if (old.p == nullptr) return;
    if (reallocf) {
      retire(slot);  // reallocf freed it
    } else {
      check_block(old);  // a failed re-allocation leaves the block as it was
    }
    return;
  }
  check_success(e, c.messages);
  // the prefix came along, and a zeroing form zeroed what the block grew by
  const size_t kept = old_size < newsize ? old_size : newsize;
  const size_t bad = pattern_mismatch(c.p, kept, old.id);
  FUZZ_CHECK(bad == kept, "realloc %p -> %p (%zu -> %zu bytes) lost the prefix at byte %zu", old.p, c.p, old_size,
             newsize, bad);
  // A block zeroed from birth is zero past what the program wrote (`dirty`:
  // in place, also what it wrote before shrinking); a zeroing re-allocation
  // keeps that: a moved block is copied up to the old usable size, the rest
  // of it zeroed.
  const bool same = c.p == old.p;
  const bool zeroed_block = zero && (old.p == nullptr || old.zeroed);
  if (zeroed_block && newsize <= kMustSucceed) {
    const size_t from = same ? old.dirty : (old.dirty < newsize ? old.dirty : newsize);
    if (from < newsize) {
      FUZZ_CHECK(all_zero(c.p, from, newsize), "%p: bytes %zu..%zu of a zeroing re-allocation are not zero", c.p, from,
                 newsize);
    }
  }
  const int heap = same ? old.heap : to_heap;
  if (old.p != nullptr) retire(slot);
  if (newsize > kMustSucceed) {
    FUZZ_CHECK(mi_usable_size(c.p) >= newsize, "a short block: %zu usable bytes for %zu", mi_usable_size(c.p), newsize);
    mi_free(c.p);
    return;
  }
  // a plain re-allocation in place keeps what the block was (an _at block may start anywhere)
  const bool keeps_alignment = same && asked_align == 0;
  admit(slot, c.p, newsize, keeps_alignment ? old.align : (aligned ? align : 0), keeps_alignment ? old.offset : offset,
        heap, zeroed_block, false);
  if (same && old.dirty > newsize) g_slots[slot].dirty = old.dirty;  // shrunk in place: the old bytes stay
}

// Frees, by this thread in its forms, or by the other thread.
void op_free(Input& in) {
  const int slot = take_slot(in);
  const uint8_t form = in.byte();
  if (g_slots[slot].p == nullptr) return;
  check_block(g_slots[slot]);
  Block b = retire(slot);
  g_op_name = "free";
  switch (form % 6) {
    case 0: mi_free(b.p); break;
    case 1: mi_free_size(b.p, b.size); break;
    case 2: mi_free_aligned(b.p, b.align ? b.align : 1); break;
    case 3: mi_free_size_aligned(b.p, b.size, b.align ? b.align : 1); break;
    case 4: mi_cfree(b.p); break;
    case 5: g_freer->hand(b.p); break;  // freed by the other thread, while this one goes on
  }
}

void op_expand(Input& in) {
  const int slot = take_slot(in);
  const size_t size = take_size(in);
  Block& b = g_slots[slot];
  if (b.p == nullptr) return;
  g_op_name = "mi_expand";
  Call c = call([&] { return mi_expand(b.p, size); });
  FUZZ_CHECK(c.messages == 0, "mi_expand printed");
  if (size <= b.usable) {
    FUZZ_CHECK(c.p == b.p, "mi_expand(%p, %zu) of a block of %zu usable bytes returned %p", b.p, size, b.usable, c.p);
    if (size > b.size) {
      g_live_bytes += size - b.size;
      b.size = size;
      if (b.zeroed && b.dirty < size) {
        FUZZ_CHECK(all_zero(b.p, b.dirty, size), "expand of a zeroed block: not zero past the writes");
      }
      fill(b.p, size, b.id);
      b.dirty = size > b.dirty ? size : b.dirty;
    }
  } else {
    FUZZ_CHECK(c.p == nullptr, "mi_expand(%p, %zu) past the block (%zu usable) returned %p", b.p, size, b.usable, c.p);
  }
  check_block(b);
}

void op_check(Input& in) {
  const int slot = take_slot(in);
  g_op_name = "check";
  if (g_slots[slot].p != nullptr) check_block(g_slots[slot]);
  FUZZ_CHECK(!mi_is_in_heap_region(nullptr), "NULL in the heap region");
}

// Drops every block of heap h from the shadow (its destroy frees them).
void forget_heap_blocks(int h) {
  for (int i = 0; i < kSlots; i++) {
    if (g_slots[i].p != nullptr && g_slots[i].heap == h) {
      check_block(g_slots[i]);
      retire(i);
    }
  }
}

void op_heap(Input& in) {
  const uint8_t form = in.byte();
  const int h = in.byte() % kHeaps;
  Heap& heap = g_heaps[h];
  switch (form % 4) {
    case 0:
    case 1:
      if (heap.heap != nullptr) return;
      if ((form & 64) && g_arena != 0) {
        g_op_name = "mi_heap_new_in_arena";
        heap.heap = mi_heap_new_in_arena(g_arena);
        heap.in_arena = true;
        heap.destroyable = false;
      } else {
        g_op_name = "mi_heap_new";
        heap.heap = mi_heap_new();
        heap.in_arena = false;
        heap.destroyable = true;
      }
      FUZZ_CHECK(heap.heap != nullptr, "no heap");
      return;
    case 2:
      // destroy: a destroyable heap frees its blocks; the others are deleted
      // (mimalloc's rule: their blocks stay valid, in the backing heap)
      if (heap.heap == nullptr) return;
      g_freer->sync();  // the other thread must not free into it afterwards
      g_op_name = "mi_heap_destroy";
      if (heap.destroyable) {
        forget_heap_blocks(h);
      } else {
        for (Block& b : g_slots) {
          if (b.p != nullptr && b.heap == h) b.heap = -1;
        }
      }
      mi_heap_destroy(heap.heap);
      heap = Heap{};
      return;
    case 3:
      if (heap.heap == nullptr) return;
      g_op_name = "mi_heap_delete";
      for (Block& b : g_slots) {
        if (b.p != nullptr && b.heap == h) b.heap = -1;
      }
      mi_heap_delete(heap.heap);
      heap = Heap{};
      return;
  }
}

// Allocation in a heap of ours (or with it as the default heap).
void op_heap_alloc(Input& in) {
  const int slot = take_slot(in);
  const uint8_t form = in.byte();
  const int h = in.byte() % kHeaps;
  size_t size = take_size(in);
  if (g_heaps[h].heap == nullptr) return;
  free_slot(slot);
  if (!keep_size(size) && size <= kMustSucceed) size = 64;
  mi_heap_t* heap = g_heaps[h].heap;
  const Expect e = expect_for(size, 0, h);
  switch (form % 9) {
    case 0:
      settle(slot, "mi_heap_malloc", call([&] { return mi_heap_malloc(heap, size); }), e, size, 0, 0, h, false);
      break;
    case 1:
      settle(slot, "mi_heap_zalloc", call([&] { return mi_heap_zalloc(heap, size); }), e, size, 0, 0, h, true);
      break;
    case 2: {
      size_t count, elem;
      take_count(in, size, &count, &elem);
      if (!keep_size(count * elem)) count = 1, elem = 64;
      settle(slot, "mi_heap_calloc", call([&] { return mi_heap_calloc(heap, count, elem); }),
             expect_n(count, elem, 0, h), count * elem, 0, 0, h, true);
      break;
    }
    case 3: {
      size_t count, elem;
      take_count(in, size, &count, &elem);
      if (!keep_size(count * elem)) count = 1, elem = 64;
      settle(slot, "mi_heap_mallocn", call([&] { return mi_heap_mallocn(heap, count, elem); }),
             expect_n(count, elem, 0, h), count * elem, 0, 0, h, false);
      break;
    }
    case 4:
    case 5: {
      const size_t align = take_alignment(in, true);
      const size_t offset = take_offset(in);
      const bool zero = form % 9 == 5;
      settle(slot, zero ? "mi_heap_zalloc_aligned_at" : "mi_heap_malloc_aligned_at", call([&] {
               return zero ? mi_heap_zalloc_aligned_at(heap, size, align, offset)
                           : mi_heap_malloc_aligned_at(heap, size, align, offset);
             }),
             expect_aligned(size, align, h), size, align, offset, h, zero);
      break;
    }
    case 6: {
      // the heap as the default for one call: mi_malloc allocates there
      mi_heap_t* old = mi_heap_set_default(heap);
      Call c = call([&] { return mi_malloc(size); });
      mi_heap_set_default(old);
      settle(slot, "mi_malloc (heap as default)", c, e, size, 0, 0, h, false);
      break;
    }
    case 7: {
      const size_t small = size % 1025;
      settle(slot, "mi_heap_malloc_small", call([&] { return mi_heap_malloc_small(heap, small); }),
             expect_for(small, 0, h), small, 0, 0, h, false);
      break;
    }
    case 8: {
      g_op_name = "mi_heap_alloc_new";
      const int before = g_messages.load(std::memory_order_relaxed);
      void* p = nullptr;
      try {
        p = mi_heap_alloc_new(heap, size);
      } catch (const std::bad_alloc&) {
      }
      const int messages = g_messages.load(std::memory_order_relaxed) - before;
      if (p == nullptr) {
        check_failure(e, ENOMEM, messages);
      } else {
        settle(slot, g_op_name, Call{p, 0, messages}, e, size, 0, 0, h, false);
      }
      break;
    }
  }
}

void op_collect(Input& in) {
  const uint8_t form = in.byte();
  g_op_name = "collect";
  if (form & 1) {
    mi_collect(form & 2);
  } else {
    const int h = (form >> 2) % kHeaps;
    if (g_heaps[h].heap != nullptr) mi_heap_collect(g_heaps[h].heap, form & 2);
  }
}

void op_sync(Input&) { g_freer->sync(); }

using Op = void (*)(Input&);
const Op kOps[] = {op_alloc,   op_alloc,      op_alloc,      op_alloc_aligned, op_alloc_aligned, op_realloc,
                   op_realloc, op_free,       op_free,       op_free,          op_expand,        op_check,
                   op_heap,    op_heap_alloc, op_heap_alloc, op_collect,       op_sync};
constexpr size_t kOpCount = sizeof(kOps) / sizeof(kOps[0]);

// Everything back, so that each input starts from an empty shadow.
void clean_up() {
  g_op_name = "clean-up";
  for (int i = 0; i < kSlots; i++) free_slot(i);
  g_freer->sync();
  for (Heap& h : g_heaps) {
    if (h.heap != nullptr) mi_heap_delete(h.heap);
    h = Heap{};
  }
  FUZZ_CHECK(g_ranges.empty() && g_live_bytes == 0, "the shadow is not empty: %zu ranges, %zu bytes", g_ranges.size(),
             g_live_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (int v = 0; v < 256; v++) memset(uniform[v], v, sizeof(uniform[v]));
  mi_register_output(&on_output, nullptr);
  mi_option_set(mi_option_show_errors, 1);
  mi_option_set(mi_option_verbose, 0);
  mi_option_set(mi_option_max_errors, -1);
  mi_option_set(mi_option_max_warnings, -1);
  // the arena of the arena heaps: small, so that they run out
  if (mi_reserve_os_memory_ex(kArenaSize, false, false, true, &g_arena) != 0) g_arena = 0;
  g_freer = new Freer;
  std::thread([] { g_freer->run(); }).detach();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool trace = getenv("API_FUZZ_TRACE") != nullptr;  // one line per operation, to stderr
  Input in{data, size};
  for (g_op_index = 0; !in.done(); g_op_index++) {
    g_op_name = "(nothing)";
    const int before = g_messages.load(std::memory_order_relaxed);
    kOps[in.byte() % kOpCount](in);
    if (trace) {
      fprintf(stderr, "%4d %-30s live %4zu blocks %9zu bytes, %d message(s)\n", g_op_index, g_op_name, g_ranges.size(),
              g_live_bytes, g_messages.load(std::memory_order_relaxed) - before);
    }
  }
  clean_up();
  return 0;
}
