#include "base/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <vector>

namespace isoboot {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Chunk size for one copy call: large enough to amortise the syscall, small
// enough to report progress often.
constexpr uint64_t kChunk = 8u << 20;

}  // namespace

UniqueFd OpenOrThrow(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) ThrowErrno(path);
  return UniqueFd(fd);
}

size_t PreadFull(int fd, std::span<uint8_t> buf, uint64_t offset) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

void WriteAll(int fd, std::span<const uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write");
    }
    done += static_cast<size_t>(n);
  }
}

void CopyRange(int in_fd, uint64_t in_offset, uint64_t length, int out_fd,
               void (*progress)(uint64_t, void*), void* ctx) {
  struct stat st {};
  if (::fstat(out_fd, &st) != 0) ThrowErrno("fstat");
  // copy_file_range for regular files (reflink or in-kernel copy), sendfile for
  // everything else (pipes, sockets, ttys); either may refuse, then fall back.
  enum class Mode {
    kCopyFileRange,
    kSendfile,
    kReadWrite
  } mode = S_ISREG(st.st_mode) ? Mode::kCopyFileRange : Mode::kSendfile;
  std::vector<uint8_t> buf;
  uint64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min(kChunk, length - done));
    ssize_t n = -1;
    if (mode == Mode::kCopyFileRange) {
      loff_t off = static_cast<loff_t>(in_offset + done);
      n = ::copy_file_range(in_fd, &off, out_fd, nullptr, want, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        mode = Mode::kSendfile;
        continue;
      }
    } else if (mode == Mode::kSendfile) {
      off_t off = static_cast<off_t>(in_offset + done);
      n = ::sendfile(out_fd, in_fd, &off, want);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
        mode = Mode::kReadWrite;
        continue;
      }
    } else {
      buf.resize(std::min<size_t>(want, 1u << 20));
      size_t got = PreadFull(in_fd, buf, in_offset + done);
      if (got == 0) {
        errno = EIO;
        ThrowErrno("unexpected end of input");
      }
      WriteAll(out_fd, std::span<const uint8_t>(buf.data(), got));
      n = static_cast<ssize_t>(got);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("copy");
    }
    if (n == 0) {
      errno = EIO;
      ThrowErrno("unexpected end of input");
    }
    done += static_cast<uint64_t>(n);
    if (progress) progress(done, ctx);
  }
}

}  // namespace isoboot
