// API conformance: the C++ allocation forms (mi_new & co.), std::new_handler
// handling, and the global operator new/delete that the shared library
// overrides.
//
// Validated against Debian's mimalloc 2.0.9 (whose shared library also
// overrides operator new/delete), except the `NewCpp.*` tests: Debian builds
// mimalloc as C, and a C build of mimalloc never sees the installed
// std::new_handler (it binds its own weak std::get_new_handler stub) and calls
// abort() where a C++ build throws std::bad_alloc.  mimalloc.h promises the
// C++ behaviour: try the new_handler, then throw std::bad_alloc.
//
// The rules (lib/api/new.cpp): a request that can never be met (count * size
// overflows, more than the address space could give, an alignment that is not
// a power of two) throws at once (std::bad_array_new_length for a count), or
// returns NULL from a nothrow form, without calling the new_handler, which
// cannot make it possible; a real shortage calls the handler for as long as it
// returns, and a nothrow form whose handler throws std::bad_alloc returns
// NULL. A real shortage here: a heap bound to a small exclusive arena, which
// takes no other memory (ArenaHeap).
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <new>

#include "opaque.h"

namespace {

// Makes the compiler believe `p` escapes, so new/delete pairs are not elided.
void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

size_t too_large() { return opaque(static_cast<size_t>(PTRDIFF_MAX) + 1); }
size_t impossible() { return opaque(SIZE_MAX / 2); }

bool is_aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

void fill_pattern(void* p, size_t n, unsigned seed) {
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((i * 5u + seed) & 0xFF);
}

bool check_pattern(const void* p, size_t n, unsigned seed) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != static_cast<unsigned char>((i * 5u + seed) & 0xFF)) return false;
  }
  return true;
}

size_t count_blocks(mi_heap_t* heap) {
  size_t n = 0;
  mi_heap_visit_blocks(
      heap, true,
      [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
        if (block != nullptr) ++*static_cast<size_t*>(arg);
        return true;
      },
      &n);
  return n;
}

// A new_handler that counts its calls and uninstalls itself on the third.
int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls >= 3) std::set_new_handler(nullptr);
}

// A new_handler that returns without doing anything: the C++ rules call it
// again and again, so only a real shortage may call it. It gives up after
// 1000 calls, so that a test of a request it must never see cannot hang.
void returning_handler() {
  if (++g_handler_calls >= 1000) std::set_new_handler(nullptr);
}

void throwing_handler() {
  ++g_handler_calls;
  throw std::bad_alloc();
}

void throwing_derived_handler() {
  ++g_handler_calls;
  throw std::bad_array_new_length();
}

struct HandlerGuard {
  explicit HandlerGuard(std::new_handler h = &counting_handler) {
    g_handler_calls = 0;
    std::set_new_handler(h);
  }
  ~HandlerGuard() { std::set_new_handler(nullptr); }
};

// A heap bound to an exclusive arena of 64 MiB, filled with blocks of kChunk
// bytes until it holds no more: a request of kChunk is then a real shortage,
// and freeing one block (release_one, as a new_handler would) ends it.
constexpr size_t kChunk = size_t{8} << 20;
struct ArenaHeap {
  mi_heap_t* heap = nullptr;
  void* blocks[16] = {};
  size_t count = 0;
  ArenaHeap() {
    static mi_arena_id_t id = [] {
      mi_arena_id_t arena = 0;
      EXPECT_EQ(mi_reserve_os_memory_ex(size_t{64} << 20, false, false, true, &arena), 0);
      return arena;
    }();
    heap = mi_heap_new_in_arena(id);
    EXPECT_NE(heap, nullptr);
    fill();
    EXPECT_GT(count, 0u);
  }
  void fill() {
    while (count < 16 && (blocks[count] = mi_heap_malloc(heap, kChunk)) != nullptr) count++;
    EXPECT_LT(count, 16u) << "the arena did not fill";
  }
  bool release_one() {
    if (count == 0) return false;
    mi_free(blocks[--count]);
    return true;
  }
  ~ArenaHeap() {
    while (release_one()) {
    }
    mi_heap_delete(heap);
  }
};
ArenaHeap* g_arena_heap = nullptr;
void releasing_handler() {
  ++g_handler_calls;
  if (g_arena_heap == nullptr || !g_arena_heap->release_one()) std::set_new_handler(nullptr);
}

// Makes the arena heap the default heap: operator new and mi_new use it.
struct DefaultHeapGuard {
  mi_heap_t* old;
  explicit DefaultHeapGuard(mi_heap_t* heap) : old(mi_heap_set_default(heap)) {}
  ~DefaultHeapGuard() { mi_heap_set_default(old); }
};

struct alignas(128) OverAligned {
  char data[200];
};

}  // namespace

TEST(New, Basics) {
  void* p = mi_new(100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 100u);
  EXPECT_TRUE(mi_check_owned(p));
  std::memset(p, 1, 100);
  mi_free(p);

  void* z = mi_new(0);
  ASSERT_NE(z, nullptr);
  mi_free(z);

  void* n = mi_new_n(10, 100);
  ASSERT_NE(n, nullptr);
  EXPECT_GE(mi_usable_size(n), 1000u);
  mi_free(n);

  void* t = mi_new_nothrow(100);
  ASSERT_NE(t, nullptr);
  mi_free(t);
}

TEST(New, Aligned) {
  for (size_t align = 1; align <= (size_t{1} << 20); align *= 2) {
    void* p = mi_new_aligned(100, align);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_TRUE(is_aligned(p, align));
    std::memset(p, 2, 100);
    mi_free(p);
    void* q = mi_new_aligned_nothrow(100, align);
    ASSERT_NE(q, nullptr) << align;
    EXPECT_TRUE(is_aligned(q, align));
    mi_free(q);
  }
}

TEST(New, NothrowReturnsNullOnImpossibleSize) {
  EXPECT_EQ(mi_new_nothrow(impossible()), nullptr);
  EXPECT_EQ(mi_new_nothrow(too_large()), nullptr);
  EXPECT_EQ(mi_new_aligned_nothrow(impossible(), 64), nullptr);
  EXPECT_EQ(mi_new_aligned_nothrow(too_large(), 64), nullptr);
}

TEST(New, Realloc) {
  void* p = mi_new(50);
  fill_pattern(p, 50, 1);
  void* q = mi_new_realloc(p, 100000);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check_pattern(q, 50, 1));
  EXPECT_GE(mi_usable_size(q), 100000u);
  void* r = mi_new_reallocn(q, 300, 1000);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(check_pattern(r, 50, 1));
  EXPECT_GE(mi_usable_size(r), 300000u);
  void* s = mi_new_realloc(nullptr, 10);
  ASSERT_NE(s, nullptr);
  mi_free(s);
  mi_free(r);
}

TEST(New, HeapAllocNew) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_alloc_new(heap, 500);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_heap_contains_block(heap, p));
  EXPECT_GE(mi_usable_size(p), 500u);
  void* q = mi_heap_alloc_new_n(heap, 25, 40);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(mi_heap_contains_block(heap, q));
  EXPECT_GE(mi_usable_size(q), 1000u);
  EXPECT_EQ(count_blocks(heap), 2u);
  mi_free(p);
  mi_free(q);
  mi_heap_delete(heap);
}

// --- the global operators (the shared library overrides them) ---

TEST(GlobalNew, PlainNewDeleteAreOurs) {
  void* p = ::operator new(100);
  escape(p);
  EXPECT_TRUE(mi_is_in_heap_region(p));
  EXPECT_TRUE(mi_check_owned(p));
  EXPECT_GE(mi_usable_size(p), 100u);
  ::operator delete(p);

  void* a = ::operator new[](1000);
  escape(a);
  EXPECT_TRUE(mi_is_in_heap_region(a));
  EXPECT_TRUE(mi_check_owned(a));
  ::operator delete[](a);

  void* s = ::operator new(64);
  escape(s);
  EXPECT_TRUE(mi_check_owned(s));
  ::operator delete(s, 64);  // sized delete

  void* sa = ::operator new[](640);
  escape(sa);
  EXPECT_TRUE(mi_check_owned(sa));
  ::operator delete[](sa, 640);

  int* obj = new int(7);
  escape(obj);
  EXPECT_TRUE(mi_check_owned(obj));
  delete obj;
}

TEST(GlobalNew, AlignedNewIsOursAndAligned) {
  for (size_t align : {32u, 64u, 256u, 4096u, 65536u}) {
    void* p = ::operator new(100, std::align_val_t(align));
    escape(p);
    EXPECT_TRUE(is_aligned(p, align)) << align;
    EXPECT_TRUE(mi_is_in_heap_region(p));
    EXPECT_TRUE(mi_check_owned(p));
    ::operator delete(p, std::align_val_t(align));

    void* q = ::operator new[](300, std::align_val_t(align));
    escape(q);
    EXPECT_TRUE(is_aligned(q, align));
    EXPECT_TRUE(mi_check_owned(q));
    ::operator delete[](q, 300, std::align_val_t(align));

    void* r = ::operator new(100, std::align_val_t(align), std::nothrow);
    escape(r);
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(is_aligned(r, align));
    EXPECT_TRUE(mi_check_owned(r));
    ::operator delete(r, 100, std::align_val_t(align));
  }
}

TEST(GlobalNew, OverAlignedTypes) {
  OverAligned* o = new OverAligned;
  escape(o);
  EXPECT_TRUE(is_aligned(o, 128));
  EXPECT_TRUE(mi_check_owned(o));
  delete o;

  OverAligned* arr = new OverAligned[7];
  escape(arr);
  EXPECT_TRUE(is_aligned(arr, 128));
  EXPECT_TRUE(mi_is_in_heap_region(arr));
  delete[] arr;

  OverAligned* nt = new (std::nothrow) OverAligned;
  escape(nt);
  ASSERT_NE(nt, nullptr);
  EXPECT_TRUE(is_aligned(nt, 128));
  EXPECT_TRUE(mi_check_owned(nt));
  delete nt;
}

TEST(GlobalNew, NothrowNew) {
  void* p = ::operator new(100, std::nothrow);
  escape(p);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_check_owned(p));
  ::operator delete(p, std::nothrow);

  void* a = ::operator new[](100, std::nothrow);
  escape(a);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(mi_check_owned(a));
  ::operator delete[](a, std::nothrow);

  EXPECT_EQ(::operator new(impossible(), std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](too_large(), std::nothrow), nullptr);
  EXPECT_EQ(::operator new(too_large(), std::align_val_t(64), std::nothrow), nullptr);
}

TEST(GlobalNew, NewAndDeleteGoThroughTheDefaultHeap) {
  // With a private default heap, new allocates there and delete frees there.
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  mi_heap_t* old = mi_heap_set_default(heap);
  void* p = ::operator new(48);
  escape(p);
  void* q = ::operator new(48, std::align_val_t(512));
  escape(q);
  const size_t live = count_blocks(heap);
  ::operator delete(p, 48);
  ::operator delete(q, std::align_val_t(512));
  const size_t after = count_blocks(heap);
  mi_heap_set_default(old);
  EXPECT_EQ(live, 2u);
  EXPECT_EQ(after, 0u);
  mi_heap_delete(heap);
}

// --- throwing forms and std::new_handler: ours only (see the top of the file) ---

TEST(NewCpp, ImpossibleSizesThrowBadAlloc) {
  EXPECT_THROW(escape(mi_new(impossible())), std::bad_alloc);
  EXPECT_THROW(escape(mi_new(too_large())), std::bad_alloc);
  EXPECT_THROW(escape(mi_new(opaque(SIZE_MAX))), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_n(impossible(), 4)), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_n(4, opaque(SIZE_MAX))), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_aligned(impossible(), 64)), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_aligned(too_large(), 4096)), std::bad_alloc);
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  EXPECT_THROW(escape(mi_heap_alloc_new(heap, impossible())), std::bad_alloc);
  EXPECT_THROW(escape(mi_heap_alloc_new_n(heap, impossible(), 8)), std::bad_alloc);
  mi_heap_delete(heap);
}

TEST(NewCpp, CountOverflowThrowsBadArrayNewLength) {
  // as `new T[n]` and std::allocator<T>::allocate(n) do
  HandlerGuard guard(&returning_handler);
  EXPECT_THROW(escape(mi_new_n(impossible(), 4)), std::bad_array_new_length);
  EXPECT_THROW(escape(mi_new_n(opaque(size_t{1} << 32), opaque(size_t{1} << 32))), std::bad_array_new_length);
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  EXPECT_THROW(escape(mi_heap_alloc_new_n(heap, opaque(SIZE_MAX), 2)), std::bad_array_new_length);
  mi_heap_delete(heap);
  void* p = mi_new(64);
  fill_pattern(p, 64, 3);
  EXPECT_THROW(escape(mi_new_reallocn(p, opaque(SIZE_MAX / 2), 3)), std::bad_array_new_length);
  EXPECT_TRUE(check_pattern(p, 64, 3));
  mi_free(p);
  EXPECT_EQ(g_handler_calls, 0) << "no new_handler can fix a count overflow (issue 10: it was called forever)";
}

TEST(NewCpp, ImpossibleRequestsDoNotCallTheNewHandler) {
  HandlerGuard guard(&returning_handler);
  EXPECT_THROW(escape(mi_new(impossible())), std::bad_alloc);
  EXPECT_THROW(escape(mi_new(opaque(SIZE_MAX))), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_aligned(too_large(), 128)), std::bad_alloc);
  EXPECT_THROW(escape(mi_new_aligned(100, opaque(size_t{24}))), std::bad_alloc) << "not a power of two";
  EXPECT_THROW(escape(::operator new(impossible())), std::bad_alloc);
  EXPECT_THROW(escape(::operator new[](too_large())), std::bad_alloc);
  EXPECT_THROW(escape(::operator new(too_large(), std::align_val_t(256))), std::bad_alloc);
  EXPECT_EQ(mi_new_nothrow(impossible()), nullptr);
  EXPECT_EQ(mi_new_aligned_nothrow(too_large(), 256), nullptr);
  EXPECT_EQ(::operator new(opaque(SIZE_MAX), std::nothrow), nullptr);
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  EXPECT_THROW(escape(mi_heap_alloc_new(heap, impossible())), std::bad_alloc);
  mi_heap_delete(heap);
  void* p = mi_new(64);
  fill_pattern(p, 64, 8);
  EXPECT_THROW(escape(mi_new_realloc(p, impossible())), std::bad_alloc);
  EXPECT_TRUE(check_pattern(p, 64, 8));
  mi_free(p);
  EXPECT_EQ(g_handler_calls, 0) << "a request that can never be met is no shortage a new_handler could end";
}

TEST(NewCpp, ReallocThrowsAndKeepsBlock) {
  void* p = mi_new(64);
  fill_pattern(p, 64, 8);
  EXPECT_THROW(escape(mi_new_realloc(p, impossible())), std::bad_alloc);
  EXPECT_TRUE(check_pattern(p, 64, 8));
  EXPECT_THROW(escape(mi_new_reallocn(p, impossible(), 16)), std::bad_alloc);
  EXPECT_TRUE(check_pattern(p, 64, 8));
  mi_free(p);
}

TEST(NewCpp, ShortageCallsTheNewHandlerUntilItIsGone) {
  ArenaHeap arena;
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(mi_heap_alloc_new(arena.heap, kChunk)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3) << "the new_handler is called until it uninstalls itself";
  }
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(mi_heap_alloc_new_n(arena.heap, kChunk / 64, 64)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
  }
  DefaultHeapGuard use(arena.heap);
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(mi_new(kChunk)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
  }
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(::operator new(kChunk)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
  }
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(::operator new[](kChunk, std::align_val_t(4096))), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
  }
  {
    HandlerGuard guard;
    EXPECT_EQ(mi_new_nothrow(kChunk), nullptr);
    EXPECT_EQ(g_handler_calls, 3);
  }
  {
    HandlerGuard guard;
    void* p = mi_new(64);
    EXPECT_THROW(escape(mi_new_realloc(p, kChunk)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
    mi_free(p);
  }
}

TEST(NewCpp, NewHandlerThatFreesMemoryEndsTheShortage) {
  ArenaHeap arena;
  g_arena_heap = &arena;
  {
    HandlerGuard guard(&releasing_handler);
    void* p = mi_heap_alloc_new(arena.heap, kChunk);
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(g_handler_calls, 1);
    mi_free(p);
  }
  arena.fill();
  {
    DefaultHeapGuard use(arena.heap);
    HandlerGuard guard(&releasing_handler);
    void* p = ::operator new(kChunk);
    escape(p);
    EXPECT_EQ(g_handler_calls, 1);
    EXPECT_TRUE(mi_heap_contains_block(arena.heap, p));
    ::operator delete(p);
  }
  g_arena_heap = nullptr;
}

TEST(NewCpp, NothrowReturnsNullWhenTheNewHandlerThrows) {
  // issue 10, defect 7: std::terminate instead of NULL
  ArenaHeap arena;
  DefaultHeapGuard use(arena.heap);
  for (std::new_handler h : {&throwing_handler, &throwing_derived_handler}) {
    HandlerGuard guard(h);
    EXPECT_EQ(::operator new(kChunk, std::nothrow), nullptr);
    EXPECT_EQ(::operator new[](kChunk, std::nothrow), nullptr);
    EXPECT_EQ(::operator new(kChunk, std::align_val_t(256), std::nothrow), nullptr);
    EXPECT_EQ(::operator new[](kChunk, std::align_val_t(1 << 20), std::nothrow), nullptr);
    EXPECT_EQ(mi_new_nothrow(kChunk), nullptr);
    EXPECT_EQ(mi_new_aligned_nothrow(kChunk, 64), nullptr);
    EXPECT_EQ(g_handler_calls, 6) << "once each, then NULL";
    // the throwing forms let the handler's exception out
    EXPECT_THROW(escape(::operator new(kChunk)), std::bad_alloc);
    EXPECT_THROW(escape(mi_new(kChunk)), std::bad_alloc);
  }
}

TEST(NewCpp, NothrowCallsNewHandlerFirst) {
  ArenaHeap arena;
  DefaultHeapGuard use(arena.heap);
  HandlerGuard guard;
  EXPECT_EQ(mi_new_nothrow(kChunk), nullptr);
  EXPECT_EQ(g_handler_calls, 3) << "the new_handler is retried until it uninstalls itself";
  g_handler_calls = 0;
  std::set_new_handler(&counting_handler);
  EXPECT_EQ(mi_new_aligned_nothrow(kChunk, 256), nullptr);
  EXPECT_EQ(g_handler_calls, 3);
}
