#pragma once
// Where an export's bytes are allocated on the host, for base:allocation:
// the runs of a vfs::Source that map to a host file are looked up with
// lseek(SEEK_DATA / SEEK_HOLE) on that file's descriptor; the rest (generated
// content) is reported as data. Thread-safe: lseek moves the shared
// descriptor's file position, which nothing else uses (reads are pread and
// sendfile with an offset).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nbd/protocol.h"

namespace isoboot::vfs {
class Source;
}  // namespace isoboot::vfs

namespace isoboot::nbd {

// The runs of [offset, offset + length) of `source`, in order, at most
// `max_runs` of them from at most 4 * max_runs of the source's file spans
// (they may then cover less than `length`; never none for a nonzero
// length). REQUIRES: offset + length <= source.size().
std::vector<AllocationRun> FindAllocation(const vfs::Source& source, uint64_t offset,
                                          uint64_t length, size_t max_runs);

}  // namespace isoboot::nbd
