#pragma once
// Block storage behind an AoE export: a file read with pread (the served
// image is never copied or held in memory) or, for tests and the benchmark
// ceiling, a buffer in memory. Read/Write/Flush are safe to call from several
// threads at once (pread/pwrite are positional).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "aoe/codec.h"
#include "base/unique_fd.h"

namespace isoboot::aoe {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size_bytes() const = 0;
  // Fill `out` from `offset`; false on I/O error or short read.
  virtual bool Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // Read on behalf of initiator `client`. A device may serve different
  // content per client (isoboot serve keeps a booted client on the image it
  // started with while new boots get a rebuilt one); by default all see the same.
  virtual bool ReadFor(const Mac& client, uint64_t offset, std::span<uint8_t> out) {
    (void)client;
    return Read(offset, out);
  }
  virtual bool Write(uint64_t offset, std::span<const uint8_t> in) = 0;
  virtual bool Flush() = 0;
};

class FileDevice : public BlockDevice {
 public:
  // Opens `path` read-only or read-write; throws std::system_error.
  // `sync` opens with O_DSYNC so every acknowledged write is durable.
  static std::unique_ptr<FileDevice> Open(const std::string& path, bool writable, bool sync);

  uint64_t size_bytes() const override { return size_; }
  bool Read(uint64_t offset, std::span<uint8_t> out) override;
  bool Write(uint64_t offset, std::span<const uint8_t> in) override;
  bool Flush() override;

 private:
  FileDevice(UniqueFd fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
  UniqueFd fd_;
  uint64_t size_;
};

// A read-only file mapped into memory: a read is a memcpy from the page
// cache, saving the pread system call per request. A file that shrinks
// while mapped fails the reads past its new end (linux/mapped_copy.h
// catches the SIGBUS), as pread would; reads within the new size go on.
class MappedDevice : public BlockDevice {
 public:
  // Throws std::system_error.
  static std::unique_ptr<MappedDevice> Open(const std::string& path);
  ~MappedDevice() override;
  MappedDevice(const MappedDevice&) = delete;
  MappedDevice& operator=(const MappedDevice&) = delete;

  uint64_t size_bytes() const override { return size_; }
  bool Read(uint64_t offset, std::span<uint8_t> out) override;
  bool Write(uint64_t, std::span<const uint8_t>) override { return false; }
  bool Flush() override { return true; }

 private:
  MappedDevice(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  uint64_t size_;
};

class MemoryDevice : public BlockDevice {
 public:
  explicit MemoryDevice(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  uint64_t size_bytes() const override { return bytes_.size(); }
  bool Read(uint64_t offset, std::span<uint8_t> out) override;
  bool Write(uint64_t offset, std::span<const uint8_t> in) override;
  bool Flush() override { return true; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace isoboot::aoe
