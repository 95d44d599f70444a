#pragma once
// Boot profiles: which kernel and initrd of the image a client boots and with
// which kernel command line, and the bootloader entries that say so
// (pxelinux, iPXE, GRUB). Pure: text in, text out.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "initrd/transports.h"
#include "iso/layout.h"

namespace isoboot::boot {

// How the booted initrd reaches the root filesystem.
enum class RootTransport {
  kAoe,   // KIWI only: the whole image as AoE device e<shelf>.<slot>
  kHttp,  // the image (or its squashfs) fetched from isoboot's HTTP server
  kNbd,   // the whole image as a read-only NBD export, read block by block
};
std::string_view ToString(RootTransport t);

struct ProfileOptions {
  RootTransport root = RootTransport::kAoe;
  uint16_t shelf = 0;
  uint8_t slot = 1;
  // Base URL of isoboot's HTTP server as clients reach it, e.g.
  // "http://10.0.0.1:8080" (no trailing slash). Needed for kHttp and iPXE.
  std::string http_base;
  // Name under which the whole image is served over HTTP.
  std::string image_name = "live.iso";
  // The NBD server as clients reach it, "10.0.0.1:10809" (kNbd: the image
  // is its default export, the empty name).
  std::string nbd_address;
  // The image's volume id: a dracut live initrd finds the image on the NBD
  // device by this label (root=live:CDLABEL=...).
  std::string volume_id;
  // Extra kernel arguments from the user ("console=ttyS0").
  std::string append;
  // boot.ipxe tries a per-node script first (nodes with their own entries).
  bool node_scripts = false;
  // Served names of initramfs archives loaded after the image's initrd (the
  // kernel unpacks them over it): e.g. a restore hook the image lacks.
  std::vector<std::string> extra_initrds;
  // What the image's initrd can mount (initrd/transports.h), when it could
  // be read: the root must be one of those, and the kernel command line
  // takes the form that initrd understands rather than the ISO layout's.
  std::optional<initrd::RootSupport> initrd;
};

// The root to use when the user named none: AoE where the initrd can do it
// (KIWI's kiwi-live + aoe.ko), else http; without initrd facts, AoE for a
// KIWI layout and http otherwise.
RootTransport DefaultRoot(const iso::Layout& layout,
                          const std::optional<initrd::RootSupport>& initrd);

struct Profile {
  std::string label = "live";
  std::string kernel;  // served name, e.g. "boot/x86_64/loader/linux" (no leading slash)
  std::string initrd;
  std::vector<std::string> extra_initrds;  // loaded after `initrd`, in order
  std::string cmdline;                     // the complete kernel command line, without initrd=
};

// The profile for an image of `layout`. Fails with a clear reason for a
// layout or transport isoboot cannot boot over the network (rather than
// serving a broken entry).
Result<Profile> MakeProfile(const iso::Layout& layout, const ProfileOptions& options);

// pxelinux.cfg/default (or a per-MAC 01-aa-bb-... file): kernel and initrd
// over TFTP relative to the TFTP root.
std::string RenderPxelinux(const Profile& profile);
// An iPXE script fetching kernel and initrd over HTTP from `http_base`.
// With `node_scripts`, it first tries the client's own script
// (nodes/<mac>.ipxe, see NodeIpxeName) and falls back to `profile`.
std::string RenderIpxe(const Profile& profile, std::string_view http_base,
                       bool node_scripts = false);
// grub.cfg for GRUB loaded over the network (paths on its TFTP root).
std::string RenderGrub(const Profile& profile);

// "01-aa-bb-cc-dd-ee-ff": pxelinux's per-client config name for a MAC.
std::string PxelinuxMacName(const uint8_t mac[6]);
// "nodes/aa-bb-cc-dd-ee-ff.ipxe": the per-client iPXE script a node_scripts
// boot.ipxe chains to (iPXE's ${mac:hexhyp}).
std::string NodeIpxeName(const uint8_t mac[6]);

}  // namespace isoboot::boot
