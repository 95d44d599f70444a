#pragma once
// SHA-256 for the overlay archive: per-file digests in the manifest and the
// whole-archive digest in the trailer. A thin wrapper over OpenSSL's EVP so
// that libcrypto stays private to overlay/. One object per stream; not shared
// between threads.

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace isoboot::overlay {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const uint8_t> data);
  void UpdateZeros(uint64_t n);  // holes of sparse files hash as zeros
  // Returns the digest and resets the object for a new stream.
  Digest Final();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

std::string Hex(std::span<const uint8_t> bytes);

}  // namespace isoboot::overlay
