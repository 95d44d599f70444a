#pragma once
// Small POSIX file helpers that loop over short reads/writes and throw
// std::system_error (with errno and the file name) on failure. For setup and
// CLI paths; servers use their own non-throwing loops.

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "base/unique_fd.h"

namespace isoboot {

UniqueFd OpenOrThrow(const std::string& path, int flags, mode_t mode = 0);

// Reads exactly buf.size() bytes at `offset`; returns fewer only at end of file.
size_t PreadFull(int fd, std::span<uint8_t> buf, uint64_t offset);

void WriteAll(int fd, std::span<const uint8_t> buf);

// Copies `length` bytes from in_fd at `in_offset` to out_fd's current position
// without going through user space where the kernel allows it
// (copy_file_range to files, sendfile to pipes and sockets), falling back to
// pread/write. `progress` (may be null) is called with the bytes copied so far.
void CopyRange(int in_fd, uint64_t in_offset, uint64_t length, int out_fd,
               void (*progress)(uint64_t done, void* ctx) = nullptr, void* ctx = nullptr);

}  // namespace isoboot
