#include "initrd/cpio.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "base/byte_io.h"

namespace isoboot::initrd {
namespace {

constexpr std::array<const char*, 13> kFields = {
    "ino",      "mode",     "uid",       "gid",       "nlink",    "mtime", "filesize",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check"};
constexpr char kTrailer[] = "TRAILER!!!";

std::optional<uint32_t> Hex8(std::span<const uint8_t> digits) {
  uint32_t v = 0;
  for (uint8_t c : digits) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | d;
  }
  return v;
}

std::string Printable(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t c : bytes)
    s += (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                 : fmt::format("\\x{:02x}", c);
  return s;
}

uint64_t PadTo4(uint64_t offset) {
  return (4 - offset % 4) % 4;
}

}  // namespace

Result<CpioHeader> ParseCpioHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() != kCpioHeaderSize) {
    return MakeError(fmt::format("cpio header: {} bytes, not {}", bytes.size(), kCpioHeaderSize));
  }
  ByteReader r(bytes);
  auto magic = r.Bytes(6);
  CpioHeader h;
  if (std::memcmp(magic.data(), "070701", 6) == 0) {
    h.crc = false;
  } else if (std::memcmp(magic.data(), "070702", 6) == 0) {
    h.crc = true;
  } else {
    return MakeError(
        fmt::format("cpio magic \"{}\" is not 070701 or 070702 (newc)", Printable(magic)));
  }
  std::array<uint32_t*, 13> out = {
      &h.ino,      &h.mode,     &h.uid,       &h.gid,       &h.nlink,    &h.mtime, &h.filesize,
      &h.devmajor, &h.devminor, &h.rdevmajor, &h.rdevminor, &h.namesize, &h.check};
  for (size_t i = 0; i < kFields.size(); ++i) {
    auto digits = r.Bytes(8);
    auto v = Hex8(digits);
    if (!v) {
      return MakeError(fmt::format("cpio header field {}: \"{}\" is not 8 hex digits", kFields[i],
                                   Printable(digits)));
    }
    *out[i] = *v;
  }
  return h;
}

void AppendCpioHeader(const CpioHeader& h, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.Text(h.crc ? "070702" : "070701");
  for (uint32_t v : {h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.filesize, h.devmajor,
                     h.devminor, h.rdevmajor, h.rdevminor, h.namesize, h.check})
    w.Text(fmt::format("{:08X}", v));
}

void AppendCpioEntry(std::string_view name, uint32_t mode, std::span<const uint8_t> data,
                     std::vector<uint8_t>& out, bool crc) {
  CpioHeader h;
  h.crc = crc;
  h.mode = mode;
  h.nlink = 1;
  h.filesize = static_cast<uint32_t>(data.size());
  h.namesize = static_cast<uint32_t>(name.size() + 1);
  if (crc) {
    for (uint8_t b : data)
      h.check += b;
  }
  AppendCpioHeader(h, out);
  ByteWriter w(out);
  w.Text(name);
  w.U8(0);
  w.Zeros(PadTo4(out.size()));
  w.Bytes(data);
  w.Zeros(PadTo4(out.size()));
}

void AppendCpioTrailer(std::vector<uint8_t>& out) {
  AppendCpioEntry(kTrailer, 0, {}, out);
}

std::string_view ToString(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kBzip2:
      return "bzip2";
    case Compression::kLzma:
      return "lzma";
    case Compression::kXz:
      return "xz";
    case Compression::kLzo:
      return "lzo";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
    case Compression::kUnknown:
      break;
  }
  return "unknown";
}

Compression DetectCompression(std::span<const uint8_t> s) {
  auto starts = [&](std::initializer_list<uint8_t> magic) {
    return s.size() >= magic.size() && std::equal(magic.begin(), magic.end(), s.begin());
  };
  if (starts({'0', '7', '0', '7', '0', '1'}) || starts({'0', '7', '0', '7', '0', '2'}))
    return Compression::kNone;
  if (starts({0x1f, 0x8b}) || starts({0x1f, 0x9e})) return Compression::kGzip;
  if (starts({'B', 'Z', 'h'})) return Compression::kBzip2;
  if (starts({0x5d, 0x00, 0x00})) return Compression::kLzma;
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return Compression::kXz;
  if (starts({0x89, 'L', 'Z', 'O'})) return Compression::kLzo;
  if (starts({0x02, 0x21, 0x4c, 0x18})) return Compression::kLz4;
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return Compression::kZstd;
  return Compression::kUnknown;
}

CpioStream::CpioStream(CpioLimits limits, Want want, OnEntry on_entry)
    : limits_(limits), want_(std::move(want)), on_entry_(std::move(on_entry)) {}

std::string CpioStream::Where() const {
  switch (state_) {
    case State::kBoundary:
      return fmt::format("between archives at byte {}", offset_);
    case State::kHeader:
      return fmt::format("inside the header of entry {} at byte {}", entries_ + 1, offset_);
    case State::kName:
      return fmt::format("inside the name of entry {} at byte {}", entries_ + 1, offset_);
    case State::kData:
    case State::kPad:
      return fmt::format("inside entry {} \"{}\" at byte {}", entries_ + 1, entry_.name, offset_);
  }
  return "";
}

Result<void> CpioStream::StartEntry() {
  auto h = ParseCpioHeader(buffer_);
  if (!h) {
    return MakeError(fmt::format("entry {} at byte {}: {}", entries_ + 1, offset_ - kCpioHeaderSize,
                                 h.error().message));
  }
  header_ = *h;
  if (header_.namesize == 0) {
    return MakeError(fmt::format("entry {} at byte {}: cpio header field namesize is 0",
                                 entries_ + 1, offset_ - kCpioHeaderSize));
  }
  if (header_.namesize > uint64_t{limits_.max_name} + 1) {
    return MakeError(ErrorKind::kExhausted,
                     fmt::format("entry {} at byte {}: namesize {} is longer than {}", entries_ + 1,
                                 offset_ - kCpioHeaderSize, header_.namesize, limits_.max_name));
  }
  if (entries_ >= limits_.max_entries) {
    return MakeError(ErrorKind::kExhausted,
                     fmt::format("more than {} cpio entries", limits_.max_entries));
  }
  buffer_.clear();
  state_ = State::kName;
  return {};
}

Result<void> CpioStream::FinishName() {
  if (buffer_.back() != 0) {
    return MakeError(fmt::format("entry {}: name \"{}\" is not NUL-terminated", entries_ + 1,
                                 Printable(buffer_)));
  }
  std::string_view name(reinterpret_cast<const char*>(buffer_.data()), buffer_.size() - 1);
  trailer_ = name == kTrailer;
  while (name.starts_with("./"))
    name.remove_prefix(2);
  while (name.starts_with('/'))
    name.remove_prefix(1);
  entry_ = CpioEntry{std::string(name), header_.mode, header_.filesize};
  keep_ = !trailer_ && want_ && header_.filesize <= limits_.max_content && want_(entry_);
  content_.clear();
  if (keep_) content_.reserve(header_.filesize);
  left_ = header_.filesize;
  sum_ = 0;
  pad_ = PadTo4(offset_);
  after_pad_ = State::kData;
  state_ = State::kPad;
  return {};
}

Result<void> CpioStream::FinishData() {
  if (header_.crc && (header_.mode & 0170000) == 0100000 && sum_ != header_.check) {
    return MakeError(fmt::format(
        "entry {} \"{}\": its data bytes sum to 0x{:08x}, its 070702 header says 0x{:08x}",
        entries_ + 1, entry_.name, sum_, header_.check));
  }
  if (!trailer_) {
    ++entries_;
    if (on_entry_) on_entry_(entry_, keep_ ? &content_ : nullptr);
  }
  pad_ = PadTo4(offset_);
  after_pad_ = trailer_ ? State::kBoundary : State::kHeader;
  state_ = State::kPad;
  return {};
}

Result<size_t> CpioStream::Feed(std::span<const uint8_t> data) {
  if (stopped_) return size_t{0};
  size_t i = 0;
  for (;;) {
    // Moves on through what needs no more bytes (empty padding, empty data).
    for (;;) {
      if (state_ == State::kPad && pad_ == 0) {
        state_ = after_pad_;
        buffer_.clear();
      } else if (state_ == State::kData && left_ == 0) {
        if (auto r = FinishData(); !r) return r.error();
      } else {
        break;
      }
    }
    if (i == data.size()) return i;
    const size_t avail = data.size() - i;
    switch (state_) {
      case State::kBoundary: {
        uint8_t b = data[i];
        if (b == 0) {
          ++i;
          ++offset_;
          continue;
        }
        if (b != '0') {
          stopped_ = true;
          return i;
        }
        if (offset_ % 4 != 0) {
          return MakeError(fmt::format(
              "byte {}: a cpio archive after padding must start 4-byte aligned", offset_));
        }
        state_ = State::kHeader;
        buffer_.clear();
        continue;
      }
      case State::kHeader:
      case State::kName: {
        size_t want = state_ == State::kHeader ? kCpioHeaderSize : header_.namesize;
        size_t take = std::min(want - buffer_.size(), avail);
        buffer_.insert(buffer_.end(), data.begin() + i, data.begin() + i + take);
        i += take;
        offset_ += take;
        if (buffer_.size() == want) {
          auto r = state_ == State::kHeader ? StartEntry() : FinishName();
          if (!r) return r.error();
        }
        continue;
      }
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(left_, avail));
        if (keep_) content_.insert(content_.end(), data.begin() + i, data.begin() + i + take);
        if (header_.crc) {
          for (size_t k = i; k < i + take; ++k)
            sum_ += data[k];
        }
        i += take;
        offset_ += take;
        left_ -= take;
        continue;
      }
      case State::kPad: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(pad_, avail));
        i += take;
        offset_ += take;
        pad_ -= take;
        continue;
      }
    }
  }
}

}  // namespace isoboot::initrd
