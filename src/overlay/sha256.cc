#include "overlay/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "base/strings.h"

namespace isoboot::overlay {
namespace {

EVP_MD_CTX* Ctx(void* p) {
  return static_cast<EVP_MD_CTX*>(p);
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(Ctx(ctx_), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("cannot initialise SHA-256 (libcrypto)");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(Ctx(ctx_));
}

void Sha256::Update(std::span<const uint8_t> data) {
  if (!data.empty()) EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size());
}

void Sha256::UpdateZeros(uint64_t n) {
  static const uint8_t kZeros[65536] = {};
  while (n > 0) {
    size_t k = n < sizeof kZeros ? static_cast<size_t>(n) : sizeof kZeros;
    EVP_DigestUpdate(Ctx(ctx_), kZeros, k);
    n -= k;
  }
}

Digest Sha256::Final() {
  Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(Ctx(ctx_), d.data(), &len);
  EVP_DigestInit_ex(Ctx(ctx_), EVP_sha256(), nullptr);
  return d;
}

std::string Hex(std::span<const uint8_t> bytes) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace isoboot::overlay
