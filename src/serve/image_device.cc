#include "serve/image_device.h"

#include <system_error>

#include "base/file_io.h"
#include "iso/image.h"
#include "linux/mapped_copy.h"

namespace isoboot::serve {

void ImageDevice::Slot::Replace(std::shared_ptr<const iso::Image> image) {
  std::lock_guard lock(mu_);
  current_ = std::move(image);
}

void ImageDevice::Slot::Bind(const aoe::Mac& mac) {
  std::lock_guard lock(mu_);
  bound_.Put(mac, current_);
}

std::shared_ptr<const iso::Image> ImageDevice::Slot::For(const aoe::Mac& mac) {
  std::lock_guard lock(mu_);
  if (const auto* image = bound_.Find(mac)) return *image;
  return current_;
}

size_t ImageDevice::Slot::bound() const {
  std::lock_guard lock(mu_);
  return bound_.size();
}

size_t ImageDevice::Slot::forgotten() const {
  std::lock_guard lock(mu_);
  return bound_.evicted();
}

std::shared_ptr<const iso::Image> ImageDevice::Slot::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

ImageDevice::ImageDevice(std::shared_ptr<const iso::Image> image)
    : slot_(std::make_shared<Slot>(image)), first_(image), size_(image->size()) {}

namespace {

bool ReadImage(const iso::Image& image, uint64_t size, uint64_t offset, std::span<uint8_t> out) {
  if (offset > size || out.size() > size - offset) return false;
  // `size` is the device's (its first image's); a rebuilt image can be
  // smaller, and its mapping ends where it does.
  if (image.mapped() && out.size() <= image.size() && offset <= image.size() - out.size()) {
    return sys::CopyFromMapping(out, image.mapped() + offset);
  }
  try {
    return PreadFull(image.fd(), out, offset) == out.size();
  } catch (const std::system_error&) {
    return false;
  }
}

}  // namespace

bool ImageDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  return ReadImage(*first_, size_, offset, out);
}

bool ImageDevice::ReadFor(const aoe::Mac& client, uint64_t offset, std::span<uint8_t> out) {
  return ReadImage(*slot_->For(client), size_, offset, out);
}

}  // namespace isoboot::serve
