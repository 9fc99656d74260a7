// stats_publish.h: the published statistics file (option stats_publish).
//
// Owns: the process's live statistics file, "<pid>-<starttime>.stats"
// (include/mimalloc-numa-stats.h), in the first usable of
//   /run/mimalloc-numa            made by the tools package's tmpfiles.d
//                                 entry, mode 1777 and owned by root (root
//                                 makes it when it is missing);
//   $XDG_RUNTIME_DIR/mimalloc-numa  made mode 0700;
//   /tmp/mimalloc-numa-UID          made mode 0700;
// a directory we make or use must be a real directory (not a symbolic
// link) owned by root or by us, and a directory of ours must be 0700.
// The file is created O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode 0600, its
// blocks allocated (a full disk is an error now, not a SIGBUS later), mapped
// MAP_SHARED once the process has lived one interval (at most 200 ms: short
// commands make no file), and refreshed from the background thread (segment/purger's
// task) every stats_publish_interval ms, stretched so that a refresh costs
// at most 1% of one core (the snapshot walks every segment: ~1 ms per GiB).
// Writes follow the header's sequence lock. Stale files of this user (pid
// gone, or its start time differs) are removed when the file is made. The
// file goes at exit. A fork child unmaps its parent's mapping without
// writing to it and makes its own file from its own background thread,
// started at the fork (a child that execs at once makes none), in the parent's directory: when
// that is gone (the tools package purged under a running server), the
// child does not publish. A set-user-ID program never
// publishes. Every failure is one warning naming the path and the error;
// the program then runs on without publishing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../include/mimalloc-numa-stats.h"

namespace mi {

// Started after process init, stopped (the file removed) at exit, and in a
// fork child: the parent's dropped, the child's own started
// (api/process.cpp calls them).
void stats_publish_start() noexcept;
void stats_publish_stop() noexcept;
void stats_publish_fork_child() noexcept;

// Copies `from` into the published `to` under the sequence lock: seq made
// odd, every 8-byte word but seq stored (relaxed), seq made even (release).
// `from`'s seq is not copied.
void stats_area_write(mi_stats_area_t* to, const mi_stats_area_t* from) noexcept;

// The directory `path` as an O_DIRECTORY|O_NOFOLLOW fd if the file may go
// there, else -1 (errno: ENOTDIR for a symbolic link or a file, EPERM for
// an owner or a mode that lets another user swap or remove our files):
// `ours` ($XDG_RUNTIME_DIR/mimalloc-numa, /tmp/mimalloc-numa-UID) must be
// owned by us and mode 0700 (no group or other bits); the shared one
// (/run/mimalloc-numa) owned by root and sticky when others may write it.
int stats_publish_open_dir(const char* path, bool ours) noexcept;

// The path of this process's file, or "" while there is none. For tests and
// the verbose message.
size_t stats_publish_path(char* buf, size_t size) noexcept;

// One refresh now (the background thread's task); returns the milliseconds
// until the next, or -1 when not publishing.
int64_t stats_publish_tick() noexcept;

}  // namespace mi
