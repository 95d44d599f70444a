#include "boot/profile.h"

#include <fmt/format.h>

namespace isoboot::boot {
namespace {

std::string Served(const std::string& image_path) {
  return image_path.starts_with('/') ? image_path.substr(1) : image_path;
}

std::string Join(std::string a, std::string_view b) {
  if (!b.empty()) {
    if (!a.empty()) a += ' ';
    a += b;
  }
  return a;
}

// The initrd's transport of the same name ("aoe", "http", "nbd").
std::optional<initrd::Transport> InitrdTransport(RootTransport t) {
  for (auto it : {initrd::Transport::kAoe, initrd::Transport::kHttp, initrd::Transport::kNbd})
    if (initrd::ToString(it) == ToString(t)) return it;
  return std::nullopt;
}

// The command line form of an image known by its layout alone.
std::optional<initrd::RootForm> LayoutForm(iso::LayoutKind kind) {
  switch (kind) {
    case iso::LayoutKind::kKiwi:
      return initrd::RootForm::kKiwi;
    case iso::LayoutKind::kDracutLive:
      return initrd::RootForm::kDracutLive;
    case iso::LayoutKind::kDebianLive:
      return initrd::RootForm::kLiveBoot;
    case iso::LayoutKind::kUbuntuCasper:
      return initrd::RootForm::kCasper;
    case iso::LayoutKind::kUnknown:
      break;
  }
  return std::nullopt;
}

// Which form the initrd takes `o.root` in, or why it cannot.
Result<initrd::RootForm> FormFromInitrd(const initrd::RootSupport& s, RootTransport root) {
  std::optional<initrd::Transport> t = InitrdTransport(root);
  const initrd::RootWay* way = t ? s.Best(*t) : nullptr;
  if (way) return way->form;
  std::vector<std::string> can;
  for (auto a : s.Available())
    can.emplace_back(initrd::ToString(a));
  return MakeError(
      ErrorKind::kUnsupported,
      fmt::format("--root {0}: this image's initrd ({1}) cannot mount its root over {0} ({2}); "
                  "it can do: {3}",
                  ToString(root), s.name,
                  t ? s.Missing(*t) : fmt::format("it knows no {} root", ToString(root)),
                  can.empty() ? std::string("none of aoe, http, nbd")
                              : fmt::format("{}", fmt::join(can, ", "))));
}

}  // namespace

std::string_view ToString(RootTransport t) {
  switch (t) {
    case RootTransport::kAoe:
      return "aoe";
    case RootTransport::kHttp:
      return "http";
    case RootTransport::kNbd:
      return "nbd";
  }
  return "?";
}

RootTransport DefaultRoot(const iso::Layout& layout,
                          const std::optional<initrd::RootSupport>& initrd) {
  if (initrd) {
    if (initrd->Best(initrd::Transport::kAoe)) return RootTransport::kAoe;
    if (initrd->Best(initrd::Transport::kHttp)) return RootTransport::kHttp;
  }
  return layout.kind == iso::LayoutKind::kKiwi ? RootTransport::kAoe : RootTransport::kHttp;
}

Result<Profile> MakeProfile(const iso::Layout& layout, const ProfileOptions& o) {
  if (layout.kind == iso::LayoutKind::kUnknown) {
    return MakeError(
        "cannot boot this image over the network: its layout is not one isoboot knows (KIWI, "
        "dracut live, Debian live-boot, casper)");
  }
  initrd::RootForm form;
  if (o.initrd) {
    auto from_initrd = FormFromInitrd(*o.initrd, o.root);
    if (!from_initrd) return from_initrd.error();
    form = *from_initrd;
  } else {
    if (o.root == RootTransport::kAoe && layout.kind != iso::LayoutKind::kKiwi) {
      return MakeError(fmt::format(
          "--root aoe needs a KIWI image (its initrd has the AoE client); this is a {} image: "
          "use --root http",
          iso::ToString(layout.kind)));
    }
    form = *LayoutForm(layout.kind);
  }
  if (o.root == RootTransport::kHttp && o.http_base.empty()) {
    return MakeError("--root http needs the HTTP server's address");
  }
  if (o.root == RootTransport::kNbd && o.nbd_address.empty()) {
    return MakeError("--root nbd needs the NBD server's address");
  }
  if (o.root == RootTransport::kNbd && form != initrd::RootForm::kDracutLive &&
      form != initrd::RootForm::kKiwi) {
    return MakeError(ErrorKind::kUnsupported,
                     fmt::format("--root nbd: a {} image has no NBD root; use --root http",
                                 iso::ToString(layout.kind)));
  }
  Profile p;
  p.kernel = Served(layout.kernel);
  p.initrd = Served(layout.initrd);
  p.extra_initrds = o.extra_initrds;
  std::string image_url = fmt::format("{}/{}", o.http_base, o.image_name);
  std::string root;
  switch (form) {
    case initrd::RootForm::kKiwi:
      if (o.root == RootTransport::kNbd) {
        return MakeError(ErrorKind::kUnsupported,
                         "--root nbd: KIWI's kiwi-live has no NBD root; an initrd with dracut's "
                         "nbd and dmsquash-live modules has (KIWI's flags=\"dmsquash\")");
      }
      root = o.root == RootTransport::kAoe
                 ? fmt::format("rd.kiwi.live.pxe root=live:AOEINTERFACE=e{}.{}", o.shelf, o.slot)
                 : fmt::format("rd.kiwi.live.pxe root=live:{}", image_url);
      break;
    case initrd::RootForm::kDracutLive:
      if (o.root == RootTransport::kNbd) {
        // dracut's nbd module connects netroot= (nbd:SERVER:PORT, the
        // default export) to /dev/nbd0; dmsquash-live then finds the image
        // there by its label. root=live:/dev/nbd0 would race nbd-client:
        // the device exists, empty, before it connects.
        if (o.volume_id.empty() || o.volume_id.find_first_of(" \t/\\\"'") != std::string::npos) {
          return MakeError(ErrorKind::kUnsupported,
                           fmt::format("--root nbd: the image's volume id '{}' cannot be named as "
                                       "root=live:CDLABEL=",
                                       o.volume_id));
        }
        root = fmt::format("root=live:CDLABEL={} rd.live.image netroot=nbd:{}", o.volume_id,
                           o.nbd_address);
        break;
      }
      if (o.root != RootTransport::kHttp) {
        return MakeError(ErrorKind::kUnsupported,
                         fmt::format("--root {}: no dracut command line for it", ToString(o.root)));
      }
      // dracut's livenet downloads root=live:URL; a file not named .iso is
      // handed to dmsquash-live-root as the image itself, which takes a
      // squashfs: the squashfs alone is all a client needs to fetch.
      root = fmt::format("root=live:{} rd.live.image",
                         layout.root_image.empty()
                             ? image_url
                             : fmt::format("{}/{}", o.http_base, Served(layout.root_image)));
      break;
    case initrd::RootForm::kLiveBoot:
      if (layout.root_image.empty()) {
        return MakeError("Debian live image without live/filesystem.squashfs: nothing to fetch");
      }
      root = fmt::format("boot=live fetch={}/{}", o.http_base, Served(layout.root_image));
      break;
    case initrd::RootForm::kCasper:
      root = fmt::format("boot=casper ip=dhcp url={}", image_url);
      break;
  }
  p.cmdline = Join(root, o.append);
  return p;
}

std::string RenderPxelinux(const Profile& p) {
  std::string initrds = p.initrd;
  for (const auto& extra : p.extra_initrds)
    initrds += "," + extra;
  return fmt::format(
      "# Generated by isoboot.\n"
      "DEFAULT {0}\n"
      "PROMPT 0\n"
      "TIMEOUT 0\n"
      "LABEL {0}\n"
      "  KERNEL {1}\n"
      "  INITRD {2}\n"
      "  APPEND {3}\n",
      p.label, p.kernel, initrds, p.cmdline);
}

std::string RenderIpxe(const Profile& p, std::string_view http_base, bool node_scripts) {
  // A node without a script of its own gets a 404 and goes on here.
  std::string node =
      node_scripts ? fmt::format("chain --autofree {}/nodes/${{mac:hexhyp}}.ipxe ||\n", http_base)
                   : "";
  // initrd=NAME tells EFI-stub kernels booted from UEFI iPXE which images
  // to concatenate as the initramfs; BIOS iPXE passes them all anyway.
  std::string names = "initrd=initrd";
  std::string fetch_extra;
  for (size_t i = 0; i < p.extra_initrds.size(); ++i) {
    names += fmt::format(" initrd=extra{}", i);
    fetch_extra += fmt::format("initrd --name extra{} {}/{} || goto failed\n", i, http_base,
                               p.extra_initrds[i]);
  }
  return fmt::format(
      "#!ipxe\n"
      "# Generated by isoboot.\n"
      "{5}"
      "echo isoboot: booting {0} over HTTP\n"
      "kernel {1}/{2} {6} {3} || goto failed\n"
      "initrd --name initrd {1}/{4} || goto failed\n"
      "{7}"
      "boot || goto failed\n"
      ":failed\n"
      "echo isoboot: boot failed, retrying in 5 seconds\n"
      "sleep 5\n"
      "chain {1}/boot.ipxe\n",
      p.label, http_base, p.kernel, p.cmdline, p.initrd, node, names, fetch_extra);
}

std::string RenderGrub(const Profile& p) {
  std::string extra;
  for (const auto& name : p.extra_initrds)
    extra += " /" + name;
  return fmt::format(
      "# Generated by isoboot.\n"
      "set default=0\n"
      "set timeout=0\n"
      "menuentry '{0}' {{\n"
      "  linux /{1} {3}\n"
      "  initrd /{2}{4}\n"
      "}}\n",
      p.label, p.kernel, p.initrd, p.cmdline, extra);
}

std::string PxelinuxMacName(const uint8_t mac[6]) {
  return fmt::format("01-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

std::string NodeIpxeName(const uint8_t mac[6]) {
  return fmt::format("nodes/{:02x}-{:02x}-{:02x}-{:02x}-{:02x}-{:02x}.ipxe", mac[0], mac[1], mac[2],
                     mac[3], mac[4], mac[5]);
}

}  // namespace isoboot::boot
