#pragma once
// The AoE export of a served image. The image can be rebuilt while clients
// run: a client keeps reading the image it started booting from (binding
// happens at its PXE DHCP request), while clients that boot later get the
// newest one. A MAC that never PXE-booted here reads the current image and
// is not remembered: AoE source MACs are the network's to invent. At most
// kMaxBoundNodes clients are bound (the least recently used are forgotten
// and then read the current image), so the bindings, and the images they
// keep open, are bounded. Open images stay open as long as a client is
// bound to them.
//
// Thread safety: all methods may be called from any thread.

#include <memory>
#include <mutex>
#include <span>

#include "aoe/codec.h"
#include "aoe/device.h"
#include "base/lru_map.h"

namespace isoboot::iso {
class Image;
}

namespace isoboot::serve {

class ImageDevice : public aoe::BlockDevice {
 public:
  // Which image each client reads; shared with the daemon, which replaces
  // the current image and binds booting clients.
  class Slot {
   public:
    static constexpr size_t kMaxBoundNodes = 4096;

    explicit Slot(std::shared_ptr<const iso::Image> image, size_t capacity = kMaxBoundNodes)
        : current_(std::move(image)), bound_(capacity) {}
    // New boots from now on get `image`.
    void Replace(std::shared_ptr<const iso::Image> image);
    // `mac` starts booting: it gets the current image from now on.
    void Bind(const aoe::Mac& mac);
    // The image `mac` reads: the one it was bound to, else the current one
    // (without binding it).
    std::shared_ptr<const iso::Image> For(const aoe::Mac& mac);
    std::shared_ptr<const iso::Image> current() const;
    size_t bound() const;
    size_t forgotten() const;  // bindings dropped to make room

   private:
    mutable std::mutex mu_;
    std::shared_ptr<const iso::Image> current_;
    LruMap<aoe::Mac, std::shared_ptr<const iso::Image>> bound_;  // guarded by mu_
  };

  explicit ImageDevice(std::shared_ptr<const iso::Image> image);
  std::shared_ptr<Slot> slot() const { return slot_; }

  // The export's size is the first image's: the Linux driver does not expect
  // a device to change size under it, and a rebuilt image of another size is
  // rejected by the daemon.
  uint64_t size_bytes() const override { return size_; }
  // Reads the first image (no client known).
  bool Read(uint64_t offset, std::span<uint8_t> out) override;
  // Reads the image `client` is bound to.
  bool ReadFor(const aoe::Mac& client, uint64_t offset, std::span<uint8_t> out) override;
  bool Write(uint64_t, std::span<const uint8_t>) override { return false; }
  bool Flush() override { return true; }

 private:
  std::shared_ptr<Slot> slot_;
  std::shared_ptr<const iso::Image> first_;
  uint64_t size_;
};

}  // namespace isoboot::serve
