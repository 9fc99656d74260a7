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
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <new>

namespace {

template <class T> T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

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

struct HandlerGuard {
  HandlerGuard() {
    g_handler_calls = 0;
    std::set_new_handler(&counting_handler);
  }
  ~HandlerGuard() { std::set_new_handler(nullptr); }
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

TEST(NewCpp, ReallocThrowsAndKeepsBlock) {
  void* p = mi_new(64);
  fill_pattern(p, 64, 8);
  EXPECT_THROW(escape(mi_new_realloc(p, impossible())), std::bad_alloc);
  EXPECT_TRUE(check_pattern(p, 64, 8));
  EXPECT_THROW(escape(mi_new_reallocn(p, impossible(), 16)), std::bad_alloc);
  EXPECT_TRUE(check_pattern(p, 64, 8));
  mi_free(p);
}

TEST(NewCpp, NewHandlerIsCalledBeforeThrowing) {
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(mi_new(impossible())), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3) << "mi_new retries through the new_handler until none is installed";
  }
  {
    HandlerGuard guard;
    EXPECT_THROW(escape(mi_new_aligned(too_large(), 128)), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
  }
  {
    HandlerGuard guard;
    mi_heap_t* heap = mi_heap_new();
    ASSERT_NE(heap, nullptr);
    EXPECT_THROW(escape(mi_heap_alloc_new(heap, impossible())), std::bad_alloc);
    EXPECT_EQ(g_handler_calls, 3);
    mi_heap_delete(heap);
  }
}

TEST(NewCpp, GlobalOperatorNewThrows) {
  EXPECT_THROW(escape(::operator new(impossible())), std::bad_alloc);
  EXPECT_THROW(escape(::operator new[](too_large())), std::bad_alloc);
  EXPECT_THROW(escape(::operator new(too_large(), std::align_val_t(256))), std::bad_alloc);
  HandlerGuard guard;
  EXPECT_THROW(escape(::operator new(impossible())), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 3);
}

TEST(NewCpp, NothrowCallsNewHandlerFirst) {
  HandlerGuard guard;
  EXPECT_EQ(mi_new_nothrow(impossible()), nullptr);
  EXPECT_EQ(g_handler_calls, 3) << "the new_handler is retried until it uninstalls itself";
  g_handler_calls = 0;
  std::set_new_handler(&counting_handler);
  EXPECT_EQ(mi_new_aligned_nothrow(too_large(), 256), nullptr);
  EXPECT_EQ(g_handler_calls, 3);
}
