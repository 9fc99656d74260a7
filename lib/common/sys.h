// sys.h: the system calls the common files need, into caller buffers.
//
// Owns: the monotonic clock, the environment, reading a file or a symbolic
// link, writing to stderr, and whether the process runs set-user-ID
// (AT_SECURE). Nothing here allocates, warns or aborts: a failure is a
// return value with errno set.
// Why here and not in os/: messages, options, the config reader and the
// statistics (common/) use these, and the os layer warns through messages:
// with these in os/, common and os included each other. The names keep
// their os_ prefix (they are the OS's, and every layer calls them); os.h
// includes this header, so a file of the layers above finds them there.
// Thread-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mi {

// Monotonic clock in milliseconds, and in nanoseconds.
int64_t os_clock_ms() noexcept;
int64_t os_clock_ns() noexcept;

// The process runs set-user-ID or set-group-ID, or with added capabilities
// (the kernel's AT_SECURE): variables that name files to read
// (MIMALLOC_CONFIG, HWLOC_XMLFILE, HWLOC_FSROOT) come from a less privileged
// user and are not followed (a warning would echo the file's lines).
bool os_is_secure() noexcept;

// Looks `name` up in the environment without allocating (scans `environ`).
// Copies the value into buf (truncated to size-1); false if unset.
bool os_getenv(const char* name, char* buf, size_t size) noexcept;
// Reads up to size-1 bytes of a file into buf, NUL-terminated. Returns the
// byte count, or -1 (errno set) if it cannot be opened or read.
long os_read_file(const char* path, char* buf, size_t size) noexcept;
// Reads the target of the symbolic link `path` into buf, NUL-terminated.
// Returns its length, or -1 (errno set) if it is not a link, cannot be read
// or does not fit in size-1 bytes (ENAMETOOLONG).
long os_read_link(const char* path, char* buf, size_t size) noexcept;
// Writes to standard error, retrying on EINTR; never fails loudly.
void os_write_stderr(const char* msg, size_t len) noexcept;

}  // namespace mi
