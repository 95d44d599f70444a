#pragma once
// Bounds-checked readers and writers for wire formats. A ByteReader never reads
// past the span it was given: every getter reports failure instead, and the
// reader stays failed (like an iostream), so a parser can read a whole header
// and check ok() once. All multi-byte getters are big-endian (network order)
// unless named Le.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace isoboot {

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> data) : data_(data) {}

  bool ok() const { return ok_; }
  size_t offset() const { return pos_; }
  size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  bool empty() const { return remaining() == 0; }

  uint8_t U8() { return static_cast<uint8_t>(Get(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Get(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Get(4)); }
  uint64_t U48() { return Get(6); }
  uint64_t U64() { return Get(8); }
  uint16_t U16Le() { return static_cast<uint16_t>(GetLe(2)); }
  uint32_t U32Le() { return static_cast<uint32_t>(GetLe(4)); }
  uint64_t U48Le() { return GetLe(6); }

  // The next n bytes, or an empty span (and failure) if fewer remain.
  std::span<const uint8_t> Bytes(size_t n) {
    if (!Need(n)) return {};
    auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  // Everything not yet read.
  std::span<const uint8_t> Rest() { return Bytes(remaining()); }
  bool Skip(size_t n) {
    if (!Need(n)) return false;
    pos_ += n;
    return true;
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  uint64_t Get(size_t n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v = (v << 8) | data_[pos_ + i];
    pos_ += n;
    return v;
  }
  uint64_t GetLe(size_t n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
      v = (v << 8) | data_[pos_ + i];
    pos_ += n;
    return v;
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Appends to a growable buffer. Writing cannot fail.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>& out) : out_(out) {}

  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v) { Put(v, 2); }
  void U32(uint32_t v) { Put(v, 4); }
  void U48(uint64_t v) { Put(v, 6); }
  void U64(uint64_t v) { Put(v, 8); }
  void U16Le(uint16_t v) { PutLe(v, 2); }
  void U32Le(uint32_t v) { PutLe(v, 4); }
  void U48Le(uint64_t v) { PutLe(v, 6); }
  void Bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void Text(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  void Zeros(size_t n) { out_.insert(out_.end(), n, 0); }
  size_t size() const { return out_.size(); }

 private:
  void Put(uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void PutLe(uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>& out_;
};

}  // namespace isoboot
