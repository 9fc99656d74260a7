// stats_file.h: the file the statistics at exit go to (the stats_file option).
//
// Owns: expanding the option's file name pattern for this process (%p the
// pid, %n the program's name, %t the process's start time in seconds since
// the epoch, %% a percent sign) and opening the file: O_WRONLY | O_CREAT |
// O_APPEND | O_CLOEXEC, mode 0640 (less the umask), so a new file belongs to
// the process's user and group, and reports of several processes in one file
// follow each other whole (each is one write(2) in append mode).
// A file that cannot be opened is one warning naming it and the error; the
// caller then writes the report to stderr. The environment cannot name the
// file of a set-user-ID program (options.cpp ignores MIMALLOC_STATS_FILE
// there).
// No allocation: everything is formatted into caller buffers.
#pragma once

#include <cstddef>

namespace mi {

// The program's name: the kernel's command name of the process
// (/proc/self/comm, at most 15 bytes), else glibc's short invocation name.
// Characters other than letters, digits, '.', '-', '_' and '+' become '_',
// so that the name is safe in a file name. Returns buf.
const char* stats_program_name(char* buf, size_t size) noexcept;

// Expands `pattern` into out (size bytes). false if the result does not fit.
bool stats_file_expand(const char* pattern, char* out, size_t size) noexcept;

// Opens the file the stats_file option names for this process: a file
// descriptor, or -1 when the option is unset or the file cannot be opened
// (then with one warning naming the file and the error).
int stats_file_open() noexcept;

}  // namespace mi
