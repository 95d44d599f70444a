#include "iso/layout.h"

#include <set>

#include "base/strings.h"
#include "iso/image.h"

namespace isoboot::iso {
namespace {

class PathSet {
 public:
  explicit PathSet(const std::vector<std::string>& paths) : all_(paths.begin(), paths.end()) {}
  bool Has(const std::string& p) const { return all_.count(p) > 0; }
  // First path (in sorted order) directly inside `dir` whose name starts with
  // `prefix`, or "".
  std::string FirstIn(const std::string& dir, std::string_view prefix) const {
    for (auto it = all_.lower_bound(dir + "/"); it != all_.end(); ++it) {
      const std::string& p = *it;
      if (p.compare(0, dir.size() + 1, dir + "/") != 0) break;
      std::string_view name = std::string_view(p).substr(dir.size() + 1);
      if (name.find('/') == std::string_view::npos && name.substr(0, prefix.size()) == prefix) {
        return p;
      }
    }
    return "";
  }
  const std::set<std::string>& all() const { return all_; }

 private:
  std::set<std::string> all_;
};

std::string NormalizeArch(std::string_view a) {
  if (a == "x86_64" || a == "amd64" || a == "x64") return "x86_64";
  if (a == "aarch64" || a == "arm64") return "aarch64";
  return "";
}

// Architecture from the UEFI removable-media loader name, or from isolinux
// (BIOS only exists on x86).
std::string ArchFromBootFiles(const PathSet& s) {
  for (const auto& p : s.all()) {
    std::string lower = ToLower(p);
    if (lower == "/efi/boot/bootx64.efi") return "x86_64";
    if (lower == "/efi/boot/bootaa64.efi") return "aarch64";
  }
  if (s.Has("/isolinux/isolinux.bin") || s.Has("/boot/isolinux/isolinux.bin")) return "x86_64";
  return "";
}

bool LooksLikeKernel(std::string_view path) {
  std::string_view name = path.substr(path.rfind('/') + 1);
  return name.starts_with("vmlinuz") || name.starts_with("vmlinux") || name == "linux" ||
         name == "bzImage" || name == "Image" || name.starts_with("kernel");
}

bool DetectKiwi(const PathSet& s, Layout& out) {
  for (const char* arch : {"x86_64", "aarch64", "ix86", "s390x", "ppc64le"}) {
    std::string loader = std::string("/boot/") + arch + "/loader/";
    if (s.Has(loader + "linux") && s.Has(loader + "initrd")) {
      out.kind = LayoutKind::kKiwi;
      out.arch = NormalizeArch(arch);
      if (out.arch.empty()) out.arch = arch;
      out.kernel = loader + "linux";
      out.initrd = loader + "initrd";
      // KIWI's live container: LiveOS/squashfs.img (holding LiveOS/rootfs.img),
      // named after the image on newer KIWI versions.
      out.root_image =
          s.Has("/LiveOS/squashfs.img") ? "/LiveOS/squashfs.img" : s.FirstIn("/LiveOS", "");
      return true;
    }
  }
  return false;
}

bool DetectDracut(const PathSet& s, Layout& out) {
  if (!s.Has("/LiveOS/squashfs.img")) return false;
  struct Pair {
    const char* kernel;
    const char* initrd;
  };
  for (Pair p : {Pair{"/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img"},
                 Pair{"/isolinux/vmlinuz", "/isolinux/initrd.img"},
                 Pair{"/isolinux/vmlinuz0", "/isolinux/initrd0.img"},
                 Pair{"/boot/x86_64/loader/linux", "/boot/x86_64/loader/initrd"}}) {
    if (s.Has(p.kernel) && s.Has(p.initrd)) {
      out.kind = LayoutKind::kDracutLive;
      out.kernel = p.kernel;
      out.initrd = p.initrd;
      out.root_image = "/LiveOS/squashfs.img";
      return true;
    }
  }
  return false;
}

bool DetectInDir(const PathSet& s, const std::string& dir, LayoutKind kind, Layout& out) {
  std::string kernel = s.FirstIn(dir, "vmlinuz");
  std::string initrd = s.FirstIn(dir, "initrd");
  if (kernel.empty() || initrd.empty()) return false;
  out.kind = kind;
  out.kernel = kernel;
  out.initrd = initrd;
  out.root_image =
      s.Has(dir + "/filesystem.squashfs") ? dir + "/filesystem.squashfs" : s.FirstIn(dir, "");
  if (!out.root_image.ends_with(".squashfs")) out.root_image.clear();
  return true;
}

}  // namespace

std::string_view ToString(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::kKiwi:
      return "kiwi";
    case LayoutKind::kDracutLive:
      return "dracut-live";
    case LayoutKind::kDebianLive:
      return "debian-live";
    case LayoutKind::kUbuntuCasper:
      return "casper";
    case LayoutKind::kUnknown:
      return "unknown";
  }
  return "unknown";
}

Layout DetectLayout(const std::vector<std::string>& paths) {
  PathSet s(paths);
  Layout out;
  if (!DetectKiwi(s, out) && !DetectDracut(s, out) &&
      !DetectInDir(s, "/live", LayoutKind::kDebianLive, out) &&
      !DetectInDir(s, "/casper", LayoutKind::kUbuntuCasper, out)) {
    for (const auto& p : s.all()) {
      if (LooksLikeKernel(p)) out.candidate_kernels.push_back(p);
    }
  }
  if (out.arch.empty()) out.arch = ArchFromBootFiles(s);
  return out;
}

Layout DetectLayout(const Tree& tree) {
  std::vector<std::string> paths;
  for (const Node& n : tree.nodes) {
    if (n.type == NodeType::kRegular || n.type == NodeType::kSymlink) {
      paths.push_back(tree.PathOf(n));
    }
  }
  return DetectLayout(paths);
}

}  // namespace isoboot::iso
