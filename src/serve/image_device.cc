#include "serve/image_device.h"

#include <system_error>

#include "base/file_io.h"
#include "iso/image.h"

namespace isoboot::serve {

void ImageDevice::Slot::Replace(std::shared_ptr<const iso::Image> image) {
  std::lock_guard lock(mu_);
  current_ = std::move(image);
}

void ImageDevice::Slot::Bind(const aoe::Mac& mac) {
  std::lock_guard lock(mu_);
  bound_[mac] = current_;
}

std::shared_ptr<const iso::Image> ImageDevice::Slot::For(const aoe::Mac& mac) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = bound_.try_emplace(mac, current_);
  return it->second;
}

std::shared_ptr<const iso::Image> ImageDevice::Slot::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

ImageDevice::ImageDevice(std::shared_ptr<const iso::Image> image)
    : slot_(std::make_shared<Slot>(image)), first_(image), size_(image->size()) {}

bool ImageDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  // TODO(aoe-generations): the target does not pass the client's MAC to the
  // device yet, so every client reads the image the export started with.
  if (offset > size_ || out.size() > size_ - offset) return false;
  try {
    return PreadFull(first_->fd(), out, offset) == out.size();
  } catch (const std::system_error&) {
    return false;
  }
}

}  // namespace isoboot::serve
