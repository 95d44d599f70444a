#pragma once
// The initramfs archive format: a sequence of cpio "newc" archives (magic
// 070701, or 070702 with a checksum field), each ending with an entry named
// TRAILER!!!, separated by zero padding, as the kernel unpacks them
// (Documentation/driver-api/early-userspace/buffer-format.rst). Some members
// of an initrd are compressed; this codec sees only cpio bytes and stops
// where a compressed member begins (initrd/reader.h decompresses it).
// Pure: bytes in, entries out. Not thread-safe; one stream per thread.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace isoboot::initrd {

inline constexpr size_t kCpioHeaderSize = 110;

// The newc header: 6 magic bytes and 13 fields of 8 hex digits.
struct CpioHeader {
  bool crc = false;  // 070702: `check` is the sum of the data bytes
  uint32_t ino = 0, mode = 0, uid = 0, gid = 0, nlink = 0, mtime = 0, filesize = 0;
  uint32_t devmajor = 0, devminor = 0, rdevmajor = 0, rdevminor = 0;
  uint32_t namesize = 0;  // including the terminating NUL
  uint32_t check = 0;
};

// Parses exactly kCpioHeaderSize bytes. Errors name the field.
Result<CpioHeader> ParseCpioHeader(std::span<const uint8_t> bytes);
// The header's 110 bytes (for tests and tools that build archives).
void AppendCpioHeader(const CpioHeader& header, std::vector<uint8_t>& out);
// One complete entry (header, name, NUL, padding, data, padding): for tests.
void AppendCpioEntry(std::string_view name, uint32_t mode, std::span<const uint8_t> data,
                     std::vector<uint8_t>& out, bool crc = false);
// The TRAILER!!! entry that ends an archive.
void AppendCpioTrailer(std::vector<uint8_t>& out);

// What a member of an initrd starts with, by its magic bytes (the kernel's
// list in lib/decompress.c).
enum class Compression {
  kNone,  // a cpio archive
  kGzip,
  kBzip2,
  kLzma,
  kXz,
  kLzo,
  kLz4,  // the legacy frame format the kernel reads
  kZstd,
  kUnknown
};
std::string_view ToString(Compression c);
Compression DetectCompression(std::span<const uint8_t> start);

struct CpioLimits {
  uint64_t max_entries = 1u << 20;
  uint32_t max_name = 4096;           // PATH_MAX, as the kernel
  uint32_t max_content = 256u << 10;  // a wanted file larger than this gets no content
};

// One file as the stream sees it. The name is as stored, minus a leading
// "./" or "/" ("usr/lib/modules/...").
struct CpioEntry {
  std::string name;
  uint32_t mode = 0;
  uint32_t size = 0;
};

// A push parser over a stream of newc archives: bytes come in pieces of any
// size, entries come out in order. Between archives (and at the start) zero
// bytes are skipped and the next archive must begin 4-byte aligned. In a
// 070702 archive a regular file whose bytes do not sum to its header's
// check is an error, as the kernel's unpacker has it ("bad data checksum").
class CpioStream {
 public:
  // Whether the contents of an entry are wanted (read only then).
  using Want = std::function<bool(const CpioEntry&)>;
  // Called for every entry but the trailers; `content` is the file's bytes
  // when wanted and at most max_content long, else null.
  using OnEntry = std::function<void(const CpioEntry&, const std::vector<uint8_t>* content)>;

  CpioStream(CpioLimits limits, Want want, OnEntry on_entry);

  // Takes the next bytes of the stream; returns how many it consumed. That
  // is all of them, unless an archive could begin here and the byte there
  // begins none (a compressed member, say): then the stream has stopped()
  // at that byte and takes no more. Errors name the entry and field.
  Result<size_t> Feed(std::span<const uint8_t> data);

  bool stopped() const { return stopped_; }
  // Between archives: the stream may end here (else it is truncated).
  bool at_boundary() const { return state_ == State::kBoundary; }
  uint64_t offset() const { return offset_; }  // bytes consumed so far
  uint64_t entries() const { return entries_; }
  // Where the stream is, for an error when it ends early ("inside the data of X").
  std::string Where() const;

 private:
  enum class State {
    kBoundary,
    kHeader,
    kName,
    kData,
    kPad
  };
  Result<void> StartEntry();
  Result<void> FinishName();
  Result<void> FinishData();

  CpioLimits limits_;
  Want want_;
  OnEntry on_entry_;
  State state_ = State::kBoundary;
  bool stopped_ = false;
  uint64_t offset_ = 0;
  uint64_t entries_ = 0;
  std::vector<uint8_t> buffer_;  // header or name being collected
  CpioHeader header_;
  CpioEntry entry_;
  bool trailer_ = false;
  bool keep_ = false;  // collecting the data into content_
  std::vector<uint8_t> content_;
  uint64_t left_ = 0;  // data bytes still to come
  uint32_t sum_ = 0;   // 070702: the sum of the data bytes so far
  uint64_t pad_ = 0;   // padding bytes still to come, then next_
  State after_pad_ = State::kBoundary;
};

}  // namespace isoboot::initrd
