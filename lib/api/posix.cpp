// posix.cpp: the POSIX, Unix, C11 and Windows-compatibility forms of mimalloc.h
// (mi_posix_memalign, mi_memalign, mi_valloc, mi_reallocarray, mi_dupenv_s, ...).
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../os/os.h"
#include "alloc_inline.h"
#include "api_internal.h"

using namespace mi;

extern "C" {

void mi_cfree(void* p) mi_attr_noexcept {
  if (mi_is_in_heap_region(p)) mi_free(p);
}

void* mi__expand(void* p, size_t newsize) mi_attr_noexcept { return mi_expand(p, newsize); }

size_t mi_malloc_size(const void* p) mi_attr_noexcept { return usable_size_of(p); }
size_t mi_malloc_usable_size(const void* p) mi_attr_noexcept { return usable_size_of(p); }
size_t mi_malloc_good_size(size_t size) mi_attr_noexcept { return good_size(size); }

int mi_posix_memalign(void** p, size_t alignment, size_t size) mi_attr_noexcept {
  if (p == nullptr) return EINVAL;
  if (alignment % sizeof(void*) != 0 || !is_power_of_two(alignment)) return EINVAL;
  const int saved = errno;  // POSIX: the result is the error, errno stays as it was
  void* q = heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
  errno = saved;
  if (q == nullptr) return ENOMEM;
  *p = q;
  return 0;
}

void* mi_memalign(size_t alignment, size_t size) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
}

void* mi_valloc(size_t size) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap_get_default(), size, os_page_size(), 0, false);
}

void* mi_pvalloc(size_t size) mi_attr_noexcept {
  const size_t psize = os_page_size();
  // rounding up to whole pages must not wrap (pvalloc(SIZE_MAX) is not 0 bytes)
  if (MI_UNLIKELY(!alloc_request_possible(size, psize))) return alloc_impossible(1, size, psize);
  return heap_malloc_aligned_at(heap_get_default(), align_up(size, psize), psize, 0, false);
}

void* mi_aligned_alloc(size_t alignment, size_t size) mi_attr_noexcept {
  // C11 asks for size to be a multiple of alignment; like glibc we do not insist.
  if (alignment == 0 || !is_power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
}

void* mi_reallocarray(void* p, size_t count, size_t size) mi_attr_noexcept {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) return alloc_impossible(count, size, 0);
  return mi_realloc(p, total);
}

int mi_reallocarr(void* p, size_t count, size_t size) mi_attr_noexcept {
  if (p == nullptr) {
    errno = EINVAL;
    return EINVAL;
  }
  void** op = static_cast<void**>(p);
  size_t total;
  if (mul_overflow(count, size, &total)) {  // mimalloc reports ENOMEM (NetBSD would say EOVERFLOW)
    alloc_impossible(count, size, 0);       // errno = ENOMEM, as mimalloc's
    return ENOMEM;
  }
  // The result is this realloc's error, not an earlier errno.
  const int saved = errno;
  errno = 0;
  void* newp = mi_realloc(*op, total);
  if (newp == nullptr) {
    if (errno == 0) errno = ENOMEM;
    return errno;
  }
  errno = saved;
  *op = newp;
  return 0;
}

void* mi_aligned_recalloc(void* p, size_t newcount, size_t size, size_t alignment) mi_attr_noexcept {
  return mi_recalloc_aligned(p, newcount, size, alignment);
}

void* mi_aligned_offset_recalloc(void* p, size_t newcount, size_t size, size_t alignment,
                                 size_t offset) mi_attr_noexcept {
  return mi_recalloc_aligned_at(p, newcount, size, alignment, offset);
}

unsigned short* mi_wcsdup(const unsigned short* s) mi_attr_noexcept {
  if (s == nullptr) return nullptr;
  size_t len = 0;
  while (s[len] != 0) len++;
  size_t bytes = (len + 1) * sizeof(unsigned short);
  unsigned short* p = static_cast<unsigned short*>(mi_malloc(bytes));
  if (p != nullptr) memcpy(p, s, bytes);
  return p;
}

unsigned char* mi_mbsdup(const unsigned char* s) mi_attr_noexcept {
  return reinterpret_cast<unsigned char*>(mi_strdup(reinterpret_cast<const char*>(s)));
}

int mi_dupenv_s(char** buf, size_t* size, const char* name) mi_attr_noexcept {
  if (buf == nullptr || name == nullptr) return EINVAL;
  if (size != nullptr) *size = 0;
  const char* value = getenv(name);
  if (value == nullptr) {
    *buf = nullptr;
    return 0;
  }
  *buf = mi_strdup(value);
  if (*buf == nullptr) return ENOMEM;
  if (size != nullptr) *size = strlen(value);
  return 0;
}

// The environment is narrow on Linux: a wide name is looked up by its
// ASCII/Latin-1 characters and the value widened the same way.
int mi_wdupenv_s(unsigned short** buf, size_t* size, const unsigned short* name) mi_attr_noexcept {
  if (buf == nullptr || name == nullptr) return EINVAL;
  if (size != nullptr) *size = 0;
  *buf = nullptr;
  char narrow[256];
  size_t n = 0;
  for (; name[n] != 0; n++) {
    if (n + 1 >= sizeof(narrow) || name[n] > 0xFF) return EINVAL;
    narrow[n] = static_cast<char>(name[n]);
  }
  narrow[n] = 0;
  const char* value = getenv(narrow);
  if (value == nullptr) return 0;
  size_t len = strlen(value);
  unsigned short* w = static_cast<unsigned short*>(mi_malloc((len + 1) * sizeof(unsigned short)));
  if (w == nullptr) return ENOMEM;
  for (size_t i = 0; i <= len; i++) w[i] = static_cast<unsigned char>(value[i]);
  *buf = w;
  if (size != nullptr) *size = len;
  return 0;
}

void mi_free_size(void* p, size_t size) mi_attr_noexcept {
  (void)size;
  free_inline(p);
}

void mi_free_size_aligned(void* p, size_t size, size_t alignment) mi_attr_noexcept {
  (void)size;
  (void)alignment;
  free_inline(p);
}

void mi_free_aligned(void* p, size_t alignment) mi_attr_noexcept {
  (void)alignment;
  free_inline(p);
}

}  // extern "C"
