// test_point.cpp: see test_point.h. Test builds only (empty otherwise).
#if MI_FAULT_INJECTION

#include "test_point.h"

namespace mi {

constinit std::atomic<TestPointHook> test_point_hook{nullptr};

}  // namespace mi

#endif
