// fault.cpp: see fault.h. Compiled into builds with -Dfault_injection=true
// only (the file is empty otherwise).
#if MI_FAULT_INJECTION

#include "fault.h"

#include <atomic>
#include <cstddef>
#include <cstring>

#include "../common/defines.h"
#include "../common/messages.h"
#include "os.h"

namespace mi {

namespace {

constexpr uint32_t ALL_KINDS = (1u << static_cast<unsigned>(Fault::count)) - 1;
const char* const kind_names[] = {"mmap", "munmap", "madvise", "mprotect", "mbind", "mremap", "huge"};
static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == static_cast<size_t>(Fault::count));

// The configuration. Set while the program does nothing else (at start, or
// by a test between its phases): each field is atomic, not the whole.
std::atomic<bool> enabled{false};
std::atomic<uint32_t> kinds{ALL_KINDS};
std::atomic<uint64_t> threshold{0};  // a call fails when a 32-bit random number is below this
std::atomic<uint64_t> nth{0};
std::atomic<uint64_t> every{0};
std::atomic<uint64_t> seed{1};
std::atomic<uint64_t> generation{0};  // a new configuration: threads reseed
std::atomic<uint64_t> thread_ordinal{0};
std::atomic<uint64_t> calls{0};
std::atomic<uint64_t> failed{0};

// Each thread draws from its own sequence: seeded from the seed and the
// order in which threads first asked.
__thread uint64_t rng_state;
__thread uint64_t rng_generation;

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint32_t next_random() {
  const uint64_t gen = generation.load(std::memory_order_acquire);
  if (rng_generation != gen) {
    rng_generation = gen;
    rng_state = splitmix(seed.load(std::memory_order_relaxed) ^
                         splitmix(thread_ordinal.fetch_add(1, std::memory_order_relaxed)));
    if (rng_state == 0) rng_state = 1;
  }
  uint64_t x = rng_state;  // xorshift64*
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return static_cast<uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 32);
}

bool word_is(const char* w, size_t n, const char* name) { return strlen(name) == n && strncmp(w, name, n) == 0; }

bool parse_count(const char* s, size_t n, uint64_t* out) {
  if (n == 0 || n > 18) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  *out = v;
  return true;
}

// "0.01", "1%", "0.1%", "1" -> the failure threshold of a 32-bit random number.
bool parse_rate(const char* s, size_t n, uint64_t* out) {
  bool percent = n > 0 && s[n - 1] == '%';
  if (percent) n--;
  uint64_t whole = 0, frac = 0, scale = 1;
  size_t i = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9' && whole < 1000; i++)
    whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
  if (i == 0 && (i >= n || s[i] != '.')) return false;
  if (i < n && s[i] == '.') {
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (scale < 1000000000ull) {
        frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
        scale *= 10;
      }
    }
  }
  if (i != n) return false;
  // rate = (whole + frac / scale) / (percent ? 100 : 1), as parts of 2^32
  const uint64_t denom = scale * (percent ? 100 : 1);
  const uint64_t num = whole * scale + frac;
  if (num > denom) return false;  // more than 100%
  *out = static_cast<uint64_t>((static_cast<unsigned __int128>(num) << 32) / denom);
  return true;
}

bool parse_kinds(const char* s, size_t n, uint32_t* out) {
  uint32_t mask = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '+' && s[j] != '|') j++;
    if (word_is(s + i, j - i, "all")) {
      mask |= ALL_KINDS;
    } else {
      bool found = false;
      for (unsigned k = 0; k < static_cast<unsigned>(Fault::count); k++) {
        if (word_is(s + i, j - i, kind_names[k])) {
          mask |= 1u << k;
          found = true;
        }
      }
      if (!found) return false;
    }
    i = j + 1;
  }
  *out = mask;
  return mask != 0;
}

bool configure(const char* spec, const char* origin) {
  uint64_t new_threshold = 0, new_nth = 0, new_every = 0, new_seed = 1;
  uint32_t new_kinds = ALL_KINDS;
  bool ok = true;
  bool any = false;
  const char* s = (spec != nullptr) ? spec : "";
  while (*s != 0) {
    while (*s == ' ' || *s == ',' || *s == '\t') s++;
    if (*s == 0) break;
    const char* w = s;
    while (*s != 0 && *s != ' ' && *s != ',' && *s != '\t') s++;
    const size_t n = static_cast<size_t>(s - w);
    const char* eq = static_cast<const char*>(memchr(w, '=', n));
    bool good = false;
    if (word_is(w, n, "off")) {
      good = true;
    } else if (eq != nullptr) {
      const size_t kn = static_cast<size_t>(eq - w);
      const char* v = eq + 1;
      const size_t vn = n - kn - 1;
      if (word_is(w, kn, "rate")) good = parse_rate(v, vn, &new_threshold);
      else if (word_is(w, kn, "nth")) good = parse_count(v, vn, &new_nth);
      else if (word_is(w, kn, "every")) good = parse_count(v, vn, &new_every);
      else if (word_is(w, kn, "seed")) good = parse_count(v, vn, &new_seed);
      else if (word_is(w, kn, "calls")) good = parse_kinds(v, vn, &new_kinds);
      any = any || (good && !word_is(w, kn, "seed") && !word_is(w, kn, "calls"));
    }
    if (!good) {
      warning_message(
          "%s: \"%.*s\" is not a fault injection setting (rate=R, nth=N, every=N, calls=K+K, seed=S, off); ignored",
          origin, static_cast<int>(n), w);
      ok = false;
    }
  }
  enabled.store(false, std::memory_order_relaxed);
  threshold.store(new_threshold, std::memory_order_relaxed);
  nth.store(new_nth, std::memory_order_relaxed);
  every.store(new_every, std::memory_order_relaxed);
  seed.store(new_seed, std::memory_order_relaxed);
  kinds.store(new_kinds, std::memory_order_relaxed);
  calls.store(0, std::memory_order_relaxed);
  failed.store(0, std::memory_order_relaxed);
  thread_ordinal.store(0, std::memory_order_relaxed);
  generation.fetch_add(1, std::memory_order_release);
  enabled.store(any && (new_threshold != 0 || new_nth != 0 || new_every != 0), std::memory_order_release);
  return ok;
}

}  // namespace

bool fault_inject(Fault kind) noexcept {
  if (MI_LIKELY(!enabled.load(std::memory_order_acquire))) return false;
  if ((kinds.load(std::memory_order_relaxed) & (1u << static_cast<unsigned>(kind))) == 0) return false;
  const uint64_t n = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  const uint64_t at = nth.load(std::memory_order_relaxed);
  const uint64_t period = every.load(std::memory_order_relaxed);
  const uint64_t limit = threshold.load(std::memory_order_relaxed);
  bool fail = (n == at) || (period != 0 && n % period == 0);
  if (!fail && limit != 0) fail = next_random() < limit;
  if (fail) failed.fetch_add(1, std::memory_order_relaxed);
  return fail;
}

void fault_init() noexcept {
  char buf[256];
  if (os_getenv("MI_FAULT_INJECT", buf, sizeof(buf))) configure(buf, "MI_FAULT_INJECT");
}

}  // namespace mi

extern "C" {

bool mi_fault_inject_config(const char* spec) { return mi::configure(spec, "mi_fault_inject_config"); }

void mi_fault_inject_counts(unsigned long long* calls, unsigned long long* failed) {
  if (calls != nullptr) *calls = mi::calls.load(std::memory_order_relaxed);
  if (failed != nullptr) *failed = mi::failed.load(std::memory_order_relaxed);
}

}  // extern "C"

#endif  // MI_FAULT_INJECTION
