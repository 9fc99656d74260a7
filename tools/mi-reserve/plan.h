// plan.h: what mi-reserve is asked to do, as values: the parsers of its
// option values (counts, node lists; page sizes and durations are read by the
// library's config_page_size_parse and config_timeout_parse, the same rule as
// for the file's [reserve]), the spread of a page count over nodes, and the
// formatting shared by its tables.
//
// Pure functions, no I/O: the command line and the config file ([reserve],
// checked by the library's reader) both end up here.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mireserve {

// The most pages one count may ask for (as the config reader allows).
constexpr long PAGES_MAX = 1048576;
constexpr long PAGE_1G_KIB = 1048576;
constexpr long PAGE_2M_KIB = 2048;

// A page count: decimal digits, 0 .. PAGES_MAX.
bool parse_count(const std::string& text, long* pages);

// A node list: "all", or "0,2-3" (ascending ranges, any order of items).
// *all is set for "all"; *nodes gets the nodes, sorted, without duplicates.
bool parse_node_list(const std::string& text, std::vector<int>* nodes, bool* all);

// `pages` spread over `count` nodes: the same on each, the remainder one
// each on the first (lowest) nodes.
std::vector<long> interleave(long pages, size_t count);

// "1 GiB", "2 MiB", "64 KiB".
std::string page_size_text(long size_kib);
// The kernel's name for a pool directory: "hugepages-1048576kB".
std::string pool_dir_name(long size_kib);
// "0-3,5": a sorted node list in the kernel's notation.
std::string node_list_text(const std::vector<int>& nodes);
// "1 page", "3 pages".
std::string pages_text(long pages);

}  // namespace mireserve
