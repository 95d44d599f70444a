// `isoboot pxe config`: print the boot entry for an image, for users who keep
// their existing PXE server (dnsmasq, tftpd + dhcpd) and only want the entry.

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "aoe/codec.h"
#include "boot/profile.h"
#include "cli/command.h"
#include "initrd/reader.h"
#include "initrd/transports.h"
#include "iso/image.h"
#include "iso/layout.h"

namespace isoboot::cli {
namespace {}  // namespace

void AddBootCommand(CLI::App& app, Run& run) {
  auto* pxe = app.add_subcommand("pxe", "Boot entries for an existing PXE server");
  pxe->require_subcommand(1);
  struct Args {
    std::string image;
    std::string aoe = "e0.1";
    std::string format = "pxelinux";
    std::string root;  // empty: what the image's initrd can do
    std::string http_base;
    std::string nbd_address;
    std::string append;
  };
  auto args = std::make_shared<Args>();
  auto* config = pxe->add_subcommand("config", "Print the pxelinux, iPXE or GRUB entry for IMAGE");
  config->add_option("IMAGE", args->image, "ISO image")->required();
  config->add_option("--aoe", args->aoe, "AoE target the image is exported as")
      ->capture_default_str();
  config->add_option("--format", args->format, "pxelinux, ipxe or grub")
      ->check(CLI::IsMember({"pxelinux", "ipxe", "grub"}))
      ->capture_default_str();
  config
      ->add_option("--root", args->root,
                   "How the initrd reaches the root: aoe, http or nbd (default: aoe when the "
                   "image's initrd can do AoE, else http)")
      ->check(CLI::IsMember({"aoe", "http", "nbd"}));
  config->add_option("--http-base", args->http_base,
                     "HTTP server serving the image and its files, e.g. http://10.0.0.1:8080");
  config->add_option("--nbd-address", args->nbd_address,
                     "NBD server exporting the image as its default export, e.g. 10.0.0.1:10809 "
                     "(--root nbd)");
  config->add_option("--append", args->append, "Extra kernel arguments, e.g. console=ttyS0");
  config->callback([&run, args] {
    run = [args] {
      auto image = OrThrow(iso::Image::Open(args->image));
      boot::ProfileOptions o;
      std::tie(o.shelf, o.slot) = OrThrow(aoe::ParseTargetName(args->aoe), "--aoe");
      iso::Layout layout = iso::DetectLayout(image->tree());
      // The initrd decides the command line's form and which roots work;
      // one that cannot be read leaves it to the layout, with a warning.
      if (const iso::Node* node = image->tree().Find(layout.initrd);
          node && !layout.initrd.empty()) {
        auto files = initrd::ReadInitrd(*image, *node, initrd::WantsContents);
        if (files) {
          o.initrd = initrd::DetectRootSupport(*files);
        } else {
          fmt::print(stderr, "warning: {}: cannot tell which roots it can mount ({})\n",
                     layout.initrd, files.error().message);
        }
      }
      if (args->root.empty()) {
        o.root = boot::DefaultRoot(layout, o.initrd);
      } else {
        o.root = args->root == "http"  ? boot::RootTransport::kHttp
                 : args->root == "nbd" ? boot::RootTransport::kNbd
                                       : boot::RootTransport::kAoe;
      }
      o.nbd_address = args->nbd_address;
      o.volume_id = image->tree().volume_id;
      o.http_base = args->http_base;
      o.append = args->append;
      if (args->format == "ipxe" && o.http_base.empty()) {
        throw std::runtime_error("--format ipxe needs --http-base (iPXE fetches over HTTP)");
      }
      if (o.root == boot::RootTransport::kHttp && o.http_base.empty()) {
        throw std::runtime_error("--root http needs --http-base (where clients fetch the root)");
      }
      if (o.root == boot::RootTransport::kNbd && o.nbd_address.empty()) {
        throw std::runtime_error("--root nbd needs --nbd-address (the NBD server, HOST:PORT)");
      }
      auto profile = OrThrow(boot::MakeProfile(layout, o));
      if (args->format == "pxelinux") fmt::print("{}", boot::RenderPxelinux(profile));
      if (args->format == "ipxe") fmt::print("{}", boot::RenderIpxe(profile, o.http_base));
      if (args->format == "grub") fmt::print("{}", boot::RenderGrub(profile));
      return 0;
    };
  });
}

}  // namespace isoboot::cli
