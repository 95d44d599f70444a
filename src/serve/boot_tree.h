#pragma once
// The tree `isoboot serve` offers over TFTP and HTTP for one image: every
// file of the image at its own path, the whole image as live.iso, the
// generated boot entries (pxelinux.cfg/default, boot.ipxe, grub.cfg) and the
// bootloaders from the host's Debian packages. Built once per opened image;
// a rebuilt image gets a new tree.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mac.h"
#include "base/result.h"
#include "boot/profile.h"
#include "iso/layout.h"
#include "vfs/vfs.h"

namespace isoboot::iso {
class Image;
}

namespace isoboot::serve {

// Bootloader files served by name, read from the host. Defaults are the
// paths of Debian's pxelinux, syslinux-common and ipxe packages.
struct Bootloaders {
  std::string pxelinux = "/usr/lib/PXELINUX/pxelinux.0";
  std::string ldlinux = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
  std::string undionly = "/usr/lib/ipxe/undionly.kpxe";
  std::string ipxe_efi = "/usr/lib/ipxe/ipxe.efi";
  std::string snponly = "/usr/lib/ipxe/snponly.efi";
  // Initramfs archives loaded after the image's initrd (--initrd-add),
  // served as initrd-add/<file name>.
  std::vector<std::string> extra_initrds;
};

struct BootTree {
  std::shared_ptr<const vfs::Tree> tree;
  iso::Layout layout;
  boot::Profile profile;
  boot::RootTransport root = boot::RootTransport::kAoe;  // what the profile boots with
  // What the image's initrd can mount its root with; nullopt when it could
  // not be read (then the layout alone decides, as before).
  std::optional<initrd::RootSupport> initrd;
  std::string initrd_error;           // why it could not be read
  std::vector<std::string> warnings;  // e.g. a bootloader file missing on this host
};

// Served names of the generated files and the whole image.
inline constexpr char kImageName[] = "live.iso";
inline constexpr char kPxelinuxConfig[] = "pxelinux.cfg/default";
inline constexpr char kIpxeScript[] = "boot.ipxe";

// Reads the image's initrd to learn which roots it can mount: with
// `pick_root`, options.root is replaced by boot::DefaultRoot's choice, and
// a root the initrd cannot mount is refused. Fails (one line) when the
// image cannot be booted with `options`, unless
// `files_only`: then an image isoboot cannot netboot (any ISO, for BMC
// virtual media) is served without boot entries, with a warning.
Result<BootTree> BuildBootTree(const std::shared_ptr<const iso::Image>& image,
                               const boot::ProfileOptions& options, const Bootloaders& loaders,
                               bool files_only = false, bool pick_root = false);

// Extra kernel arguments for one client (e.g. where its overlay backup is).
struct NodeEntry {
  MacAddress mac{};
  std::string kernel_args;
};

// For each node, its own entries: pxelinux.cfg/01-<mac> and nodes/<mac>.ipxe
// with the node's arguments after the profile's. An entry may carry a secret
// (its overlay backup's key), so the daemon serves it to that node only;
// everyone else finds no per-node entry and pxelinux and iPXE use the
// common one.
std::map<MacAddress, std::shared_ptr<const vfs::Tree>> NodeTrees(
    const BootTree& boot, std::string_view http_base, const std::vector<NodeEntry>& nodes);

}  // namespace isoboot::serve
