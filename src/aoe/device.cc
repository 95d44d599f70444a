#include "aoe/device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/file_io.h"
#include "linux/mapped_copy.h"

namespace isoboot::aoe {

std::unique_ptr<FileDevice> FileDevice::Open(const std::string& path, bool writable, bool sync) {
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | (sync ? O_DSYNC : 0);
  UniqueFd fd = OpenOrThrow(path, flags);
  // lseek gives the size of regular files and block devices alike.
  off_t end = lseek(fd.get(), 0, SEEK_END);
  if (end < 0) throw std::system_error(errno, std::generic_category(), path);
  uint64_t size = static_cast<uint64_t>(end);
  return std::unique_ptr<FileDevice>(new FileDevice(std::move(fd), size));
}

bool FileDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool FileDevice::Write(uint64_t offset, std::span<const uint8_t> in) {
  size_t done = 0;
  while (done < in.size()) {
    ssize_t n =
        pwrite(fd_.get(), in.data() + done, in.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool FileDevice::Flush() {
  return fdatasync(fd_.get()) == 0;
}

std::unique_ptr<MappedDevice> MappedDevice::Open(const std::string& path) {
  UniqueFd fd = OpenOrThrow(path, O_RDONLY | O_CLOEXEC);
  off_t end = lseek(fd.get(), 0, SEEK_END);
  if (end < 0) throw std::system_error(errno, std::generic_category(), path);
  if (end == 0) return std::unique_ptr<MappedDevice>(new MappedDevice(nullptr, 0));
  void* p = mmap(nullptr, static_cast<size_t>(end), PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap " + path);
  return std::unique_ptr<MappedDevice>(
      new MappedDevice(static_cast<const uint8_t*>(p), static_cast<uint64_t>(end)));
}

MappedDevice::~MappedDevice() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

bool MappedDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size_ || out.size() > size_ - offset) return false;
  return sys::CopyFromMapping(out, data_ + offset);
}

bool MemoryDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > bytes_.size() || out.size() > bytes_.size() - offset) return false;
  std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return true;
}

bool MemoryDevice::Write(uint64_t offset, std::span<const uint8_t> in) {
  if (offset > bytes_.size() || in.size() > bytes_.size() - offset) return false;
  std::memcpy(bytes_.data() + offset, in.data(), in.size());
  return true;
}

}  // namespace isoboot::aoe
