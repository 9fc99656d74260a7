// locked_list.h: a doubly linked list of objects that hold their own links,
// changed under a mutex of the list's owner.
//
// Owns: adding to the front and removing, the one copy of that rule for the
// live threads' data (heap/thread.cpp) and every live segment
// (segment/segment.cpp). The owner keeps the mutex and the first element,
// walks the list under the mutex, and re-initialises the mutex in a fork
// child: those stay beside the list they guard.
// Thread-safety: add and remove take the mutex; a walk must hold it.
#pragma once

#include <pthread.h>

namespace mi {

template <typename T, T* T::*Next, T* T::*Prev>
void locked_list_add(pthread_mutex_t* lock, T** first, T* x) noexcept {
  pthread_mutex_lock(lock);
  x->*Prev = nullptr;
  x->*Next = *first;
  if (*first != nullptr) (*first)->*Prev = x;
  *first = x;
  pthread_mutex_unlock(lock);
}

// x may be on the list or not (its links null, and not first: nothing to do).
template <typename T, T* T::*Next, T* T::*Prev>
void locked_list_remove(pthread_mutex_t* lock, T** first, T* x) noexcept {
  pthread_mutex_lock(lock);
  if (x->*Prev != nullptr) (x->*Prev)->*Next = x->*Next;
  else if (*first == x) *first = x->*Next;
  if (x->*Next != nullptr) (x->*Next)->*Prev = x->*Prev;
  x->*Next = x->*Prev = nullptr;
  pthread_mutex_unlock(lock);
}

}  // namespace mi
