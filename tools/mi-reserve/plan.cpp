// plan.cpp: see plan.h.
#include "plan.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace mireserve {

namespace {

// Digits only, no sign, no overflow past `max`.
bool parse_digits(const std::string& text, size_t* pos, long max, long* out) {
  size_t i = *pos;
  long v = 0;
  if (i >= text.size() || !isdigit(static_cast<unsigned char>(text[i]))) return false;
  for (; i < text.size() && isdigit(static_cast<unsigned char>(text[i])); i++) {
    v = v * 10 + (text[i] - '0');
    if (v > max) return false;
  }
  *pos = i;
  *out = v;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool parse_count(const std::string& text, long* pages) {
  size_t pos = 0;
  long v;
  if (!parse_digits(text, &pos, PAGES_MAX, &v) || pos != text.size()) return false;
  *pages = v;
  return true;
}

bool parse_page_size(const std::string& text, long* size_kib) {
  size_t pos = 0;
  long n;
  if (!parse_digits(text, &pos, 1L << 40, &n) || n == 0) return false;
  std::string unit = text.substr(pos);
  if (!unit.empty() && unit[0] == ' ') unit.erase(0, 1);  // "1 GiB", as the tables print it
  // the unit: K, M, G, then nothing, "B" or "iB" (case-insensitive: "kB" is the kernel's)
  if (unit.empty()) return false;  // a bare number is ambiguous (bytes? KiB?)
  long mult;
  switch (tolower(static_cast<unsigned char>(unit[0]))) {
    case 'k': mult = 1; break;
    case 'm': mult = 1024; break;
    case 'g': mult = 1024 * 1024; break;
    default: return false;
  }
  std::string rest = lower(unit.substr(1));
  if (rest != "" && rest != "b" && rest != "ib") return false;
  long kib = n * mult;
  if (kib < 4 || (kib & (kib - 1)) != 0 || kib > (16L << 20)) return false;  // 4 KiB .. 16 GiB, powers of two
  *size_kib = kib;
  return true;
}

bool parse_duration_ms(const std::string& text, long* ms) {
  size_t pos = 0;
  long n;
  if (!parse_digits(text, &pos, 1L << 40, &n)) return false;
  std::string unit = lower(text.substr(pos));
  long mult;
  if (unit.empty() || unit == "s" || unit == "sec") mult = 1000;
  else if (unit == "ms") mult = 1;
  else if (unit == "m" || unit == "min") mult = 60 * 1000;
  else if (unit == "h") mult = 3600 * 1000;
  else return false;
  if (n > (INT64_C(1) << 40) / mult) return false;
  *ms = n * mult;
  return true;
}

bool parse_node_list(const std::string& text, std::vector<int>* nodes, bool* all) {
  nodes->clear();
  *all = false;
  if (text == "all") {
    *all = true;
    return true;
  }
  size_t pos = 0;
  constexpr long NODE_MAX = 4095;
  while (true) {
    long first, last;
    if (!parse_digits(text, &pos, NODE_MAX, &first)) return false;
    last = first;
    if (pos < text.size() && text[pos] == '-') {
      pos++;
      if (!parse_digits(text, &pos, NODE_MAX, &last) || last < first) return false;
    }
    for (long n = first; n <= last; n++) nodes->push_back(static_cast<int>(n));
    if (pos == text.size()) break;
    if (text[pos] != ',') return false;
    pos++;
  }
  std::sort(nodes->begin(), nodes->end());
  nodes->erase(std::unique(nodes->begin(), nodes->end()), nodes->end());
  return true;
}

std::vector<long> interleave(long pages, size_t count) {
  std::vector<long> out(count, 0);
  if (count == 0) return out;
  const long per = pages / static_cast<long>(count);
  const long rem = pages % static_cast<long>(count);
  for (size_t i = 0; i < count; i++) out[i] = per + (static_cast<long>(i) < rem ? 1 : 0);
  return out;
}

std::string page_size_text(long size_kib) {
  if (size_kib >= 1024 * 1024 && size_kib % (1024 * 1024) == 0)
    return std::to_string(size_kib / (1024 * 1024)) + " GiB";
  if (size_kib >= 1024 && size_kib % 1024 == 0) return std::to_string(size_kib / 1024) + " MiB";
  return std::to_string(size_kib) + " KiB";
}

std::string pool_dir_name(long size_kib) { return "hugepages-" + std::to_string(size_kib) + "kB"; }

std::string node_list_text(const std::vector<int>& nodes) {
  std::string out;
  for (size_t i = 0; i < nodes.size();) {
    size_t j = i;
    while (j + 1 < nodes.size() && nodes[j + 1] == nodes[j] + 1) j++;
    if (!out.empty()) out += ',';
    out += std::to_string(nodes[i]);
    if (j > i) out += '-' + std::to_string(nodes[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

std::string pages_text(long pages) { return std::to_string(pages) + (pages == 1 ? " page" : " pages"); }

}  // namespace mireserve
