// plan.cpp: see plan.h.
#include "plan.h"

#include <algorithm>
#include <cctype>

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

}  // namespace

bool parse_count(const std::string& text, long* pages) {
  size_t pos = 0;
  long v;
  if (!parse_digits(text, &pos, PAGES_MAX, &v) || pos != text.size()) return false;
  *pages = v;
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
