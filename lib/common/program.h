// program.h: which program this process runs, for the [program.NAME] tables
// of the configuration file (config.h).
//
// Owns: the two names of the program, read without allocating when first
// asked for (at start-up, by the config reader when the file has a
// [program.NAME] table, or by the verbose output; a process that needs
// neither never reads them):
//   - the base name of argv[0], as the program was started
//     (/proc/self/cmdline; glibc's program_invocation_name where /proc is not
//     mounted): "mysqld" for a server started through the mysqld -> mariadbd
//     link, "postgres" for PostgreSQL's postmaster and its backends;
//   - the base name of the executable file (/proc/self/exe, symbolic links
//     resolved): "mariadbd" in both cases above, "python3.11" for python3.
// A table [program.NAME] applies to the process when NAME equals one of them
// (exactly; case matters, as in file names). /proc/self/comm is not used: the
// kernel cuts it to 15 bytes.
//
// Thread-safety: the first caller reads the names, concurrent callers wait
// for it; afterwards they are only read. A fork child keeps the names of its
// parent (PostgreSQL's backends are "postgres"); an exec reads them anew.
#pragma once

#include <cstddef>

namespace mi {

constexpr size_t PROGRAM_NAME_MAX = 256;  // a file name (NAME_MAX) and its NUL

// Reads both names now (again, if they were read before). The getters below
// read them on their first call; this is for tests that set other names.
void program_identify() noexcept;

// argv[0]'s base name and the executable's base name ("" where unknown).
const char* program_argv0_name() noexcept;
const char* program_exe_name() noexcept;

// The name of this program that equals `name` (argv[0]'s first), in storage
// that lives as long as the process, or nullptr when neither does.
const char* program_match(const char* name) noexcept;

// Sets both names (tests and tools that read a file for another program;
// never called by the library itself). nullptr leaves a name as it is.
void program_set_names(const char* argv0_name, const char* exe_name) noexcept;

}  // namespace mi
