#pragma once
// Copying out of a file mapping without dying when the file shrinks. A
// served image can be truncated or rewritten in place while it is mapped;
// touching a mapped page past the file's new end raises SIGBUS, whose
// default action kills the whole server. CopyFromMapping catches that
// SIGBUS for the copy alone (a process-wide handler, installed on first
// use, jumps back out of the faulting copy on the thread that faulted), so
// the caller answers one read with an error, as a short pread would, and
// serves on. A SIGBUS anywhere else keeps the effect it had before: the
// handler passes it to the previous handler or to the default action.
//
// A memcpy from the page cache instead of a pread saves a system call per
// read: a quarter of an AoE target's CPU time per request, measured.

#include <cstdint>
#include <span>

namespace isoboot::sys {

// Copies out.size() bytes from `mapped`, inside a MAP_SHARED file mapping,
// to `out`. Returns false (out's bytes unspecified) if part of the source
// is no longer backed by the file. Thread-safe.
bool CopyFromMapping(std::span<uint8_t> out, const uint8_t* mapped);

}  // namespace isoboot::sys
