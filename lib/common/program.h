// program.h: which program this process runs, for the [program.NAME] tables
// of the configuration file (config.h).
//
// Owns: the two names of the program, read once at start-up without
// allocating:
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
// Thread-safety: program_identify runs once in process start-up, before other
// threads exist; the getters then only read. A fork child keeps the names of
// its parent (PostgreSQL's backends are "postgres"); an exec reads them anew.
#pragma once

#include <cstddef>

namespace mi {

constexpr size_t PROGRAM_NAME_MAX = 256;  // a file name (NAME_MAX) and its NUL

// Reads both names. Called from config_load_startup, before the file is read.
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
