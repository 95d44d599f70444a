#include "serve/boot_tree.h"

#include <fmt/format.h>

#include "initrd/reader.h"
#include "iso/image.h"

namespace isoboot::serve {

Result<BootTree> BuildBootTree(const std::shared_ptr<const iso::Image>& image,
                               const boot::ProfileOptions& options, const Bootloaders& loaders,
                               bool files_only, bool pick_root) {
  BootTree out;
  out.layout = iso::DetectLayout(image->tree());
  boot::ProfileOptions profile_options = options;
  if (const iso::Node* node = image->tree().Find(out.layout.initrd);
      node && !out.layout.initrd.empty()) {
    auto files = initrd::ReadInitrd(*image, *node, initrd::WantsContents);
    if (files) {
      out.initrd = initrd::DetectRootSupport(*files);
    } else {
      out.initrd_error = files.error().message;
    }
  }
  profile_options.initrd = out.initrd;
  profile_options.volume_id = image->tree().volume_id;
  if (pick_root) profile_options.root = boot::DefaultRoot(out.layout, out.initrd);
  out.root = profile_options.root;
  auto tree = std::make_shared<vfs::Tree>();
  vfs::AddImageFiles(*tree, image);
  tree->Add(kImageName, vfs::WholeImageSource(image));
  for (const auto& path : loaders.extra_initrds) {
    auto source = vfs::HostFileSource(path);
    if (!source) return MakeError(fmt::format("--initrd-add: {}", source.error().message));
    std::string name = "initrd-add/" + path.substr(path.rfind('/') + 1);
    tree->Add(name, *source);
    profile_options.extra_initrds.push_back(name);
  }
  auto profile = boot::MakeProfile(out.layout, profile_options);
  if (!profile) {
    if (!files_only) return profile.error();
    out.warnings.push_back(profile.error().message + "; serving its files only");
    out.tree = std::move(tree);
    return out;
  }
  out.profile = *profile;

  int64_t mtime = image->file_stat().st_mtime;
  tree->Add(kPxelinuxConfig, vfs::TextSource(boot::RenderPxelinux(out.profile), mtime));
  tree->Add(kIpxeScript,
            vfs::TextSource(boot::RenderIpxe(out.profile, options.http_base, options.node_scripts),
                            mtime));
  std::string grub = boot::RenderGrub(out.profile);
  tree->Add("grub.cfg", vfs::TextSource(grub, mtime));
  tree->Add("grub/grub.cfg", vfs::TextSource(grub, mtime));

  struct Loader {
    const char* name;
    const std::string& path;
  };
  for (Loader l : {Loader{"pxelinux.0", loaders.pxelinux}, Loader{"ldlinux.c32", loaders.ldlinux},
                   Loader{"undionly.kpxe", loaders.undionly}, Loader{"ipxe.efi", loaders.ipxe_efi},
                   Loader{"snponly.efi", loaders.snponly}}) {
    auto source = vfs::HostFileSource(l.path);
    if (!source) {
      out.warnings.push_back(fmt::format("{} is not served: {}", l.name, source.error().message));
      continue;
    }
    tree->Add(l.name, *source);
  }
  out.tree = std::move(tree);
  return out;
}

std::map<MacAddress, std::shared_ptr<const vfs::Tree>> NodeTrees(
    const BootTree& boot, std::string_view http_base, const std::vector<NodeEntry>& nodes) {
  std::map<MacAddress, std::shared_ptr<const vfs::Tree>> trees;
  if (boot.profile.kernel.empty()) return trees;
  for (const NodeEntry& node : nodes) {
    boot::Profile profile = boot.profile;
    profile.cmdline += " " + node.kernel_args;
    auto tree = std::make_shared<vfs::Tree>();
    tree->Add("pxelinux.cfg/" + boot::PxelinuxMacName(node.mac.data()),
              vfs::TextSource(boot::RenderPxelinux(profile)));
    tree->Add(boot::NodeIpxeName(node.mac.data()),
              vfs::TextSource(boot::RenderIpxe(profile, http_base)));
    trees[node.mac] = std::move(tree);
  }
  return trees;
}

}  // namespace isoboot::serve
