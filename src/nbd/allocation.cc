#include "nbd/allocation.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>

#include "vfs/vfs.h"

namespace isoboot::nbd {
namespace {

// The runs of the file bytes [pos, end) of `fd`, appended to `runs` (up to
// max_runs in all); how many bytes they cover.
uint64_t FileRuns(int fd, uint64_t pos, uint64_t end, size_t max_runs,
                  std::vector<AllocationRun>& runs) {
  const uint64_t start = pos;
  auto add = [&](uint64_t n, bool hole) {
    if (!runs.empty() && runs.back().hole == hole) {
      runs.back().length += n;
    } else {
      runs.push_back({n, hole});
    }
  };
  while (pos < end && runs.size() < max_runs) {
    off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      // ENXIO: no data at or after pos (a hole to the end of the file).
      // Anything else (a filesystem without the call): data, always true.
      add(end - pos, errno == ENXIO);
      return end - start;
    }
    if (static_cast<uint64_t>(data) > pos) {
      uint64_t hole_end = std::min<uint64_t>(static_cast<uint64_t>(data), end);
      add(hole_end - pos, true);
      pos = hole_end;
      continue;
    }
    off_t hole = ::lseek(fd, static_cast<off_t>(pos), SEEK_HOLE);
    uint64_t data_end = hole < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    if (data_end <= pos) data_end = end;  // a file changing under us: say data
    add(data_end - pos, false);
    pos = data_end;
  }
  return pos - start;
}

}  // namespace

std::vector<AllocationRun> FindAllocation(const vfs::Source& source, uint64_t offset,
                                          uint64_t length, size_t max_runs) {
  std::vector<AllocationRun> runs;
  max_runs = std::max<size_t>(max_runs, 1);
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  // Spans of data merge into one run, so bound the spans too: a file of
  // many extents inside an image costs at most this many lookups.
  size_t spans = 0;
  while (pos < end && runs.size() < max_runs && spans++ < 4 * max_runs) {
    auto span = source.Contiguous(pos);
    if (!span || span->length == 0) {
      // Not a file here (generated text), and where it becomes one again
      // is not known: data to the end.
      if (!runs.empty() && !runs.back().hole) {
        runs.back().length += end - pos;
      } else {
        runs.push_back({end - pos, false});
      }
      break;
    }
    uint64_t n = std::min(span->length, end - pos);
    uint64_t got = FileRuns(span->fd, span->file_offset, span->file_offset + n, max_runs, runs);
    if (got < n) break;  // stopped at max_runs inside the span
    pos += n;
  }
  return runs;
}

}  // namespace isoboot::nbd
