// `isoboot serve IMAGE --interface IFACE`: boot clients from one live ISO
// (DHCP/ProxyDHCP, TFTP, HTTP, AoE, generated boot entries).

#include <memory>
#include <string>

#include "cli/command.h"
#include "serve/config_file.h"
#include "serve/daemon.h"

namespace isoboot::cli {
namespace {

// Sets every flag named in the TOML file that the command line did not give.
void ApplyConfigFile(CLI::App& command, const std::string& path) {
  auto entries = serve::ReadConfigFile(path);
  if (!entries) throw CLI::ValidationError("--config", entries.error().message);
  for (const auto& [key, values] : *entries) {
    CLI::Option* option = command.get_option_no_throw("--" + key);
    if (!option || key == "config") {
      throw CLI::ValidationError("--config", path + ": unknown option \"" + key + "\"");
    }
    if (option->count() > 0) continue;  // given on the command line
    for (const auto& v : values)
      option->add_result(v);
    option->run_callback();
  }
}

}  // namespace

void AddServeCommand(CLI::App& app, Run& run) {
  auto* serve = app.add_subcommand(
      "serve", "Boot clients from IMAGE: DHCP/ProxyDHCP, TFTP, HTTP and AoE, all from the ISO");
  auto o = std::make_shared<serve::Options>();
  // Every flag can also come from a TOML file (key = flag name without --).
  auto config = std::make_shared<std::string>();
  serve->add_option("--config", *config,
                    "TOML file with any of these options, e.g. dhcp = \"full\" (flags win)");
  serve->add_option("IMAGE", o->image, "Live ISO image")->required();
  serve->add_option("-i,--interface", o->interface, "Interface of the boot network (e.g. br0)");
  serve->add_option("--server-ip", o->server_ip,
                    "Address clients reach this server at (default: the interface's IPv4)");
  serve
      ->add_option("--dhcp", o->dhcp,
                   "proxy: PXE answers beside the site's DHCP server; full: lease addresses "
                   "(needs --dhcp-range); off")
      ->check(CLI::IsMember({"proxy", "full", "off"}))
      ->capture_default_str();
  serve->add_option("--dhcp-range", o->dhcp_range, "Full DHCP: START,END[,NETMASK]");
  serve->add_option("--lease-file", o->lease_file, "Full DHCP: file the leases persist in");
  serve->add_option("--root", o->root, "How the initrd reaches its root: aoe (KIWI) or http")
      ->check(CLI::IsMember({"aoe", "http"}))
      ->capture_default_str();
  serve->add_option("--aoe", o->aoe, "AoE target to export the image as")->capture_default_str();
  serve->add_option("--append", o->append, "Extra kernel arguments, e.g. console=ttyS0");
  serve
      ->add_option("--bios-loader", o->bios_loader,
                   "BIOS clients: ipxe (undionly.kpxe, then HTTP) or pxelinux (TFTP)")
      ->check(CLI::IsMember({"ipxe", "pxelinux"}))
      ->capture_default_str();
  serve->add_option("--uefi-loader", o->uefi_loader, "UEFI x86-64 clients: ipxe.efi or snponly.efi")
      ->check(CLI::IsMember({"ipxe.efi", "snponly.efi"}))
      ->capture_default_str();
  serve->add_option("--tftp-address", o->tftp_address)->capture_default_str();
  serve->add_option("--tftp-port", o->tftp_port)->capture_default_str();
  serve->add_option("--http-address", o->http_address)->capture_default_str();
  serve->add_option("--http-port", o->http_port, "0 picks a free port")->capture_default_str();
  serve
      ->add_option("--announce", o->announce_seconds,
                   "Seconds between unsolicited AoE announcements (0: off)")
      ->capture_default_str();
  serve
      ->add_option("--ipv6-ra", o->ipv6_ra,
                   "Answer IPv6 router solicitations with an empty advertisement so iPXE does "
                   "not wait ~16 s for IPv6: auto (with --dhcp full), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  serve->add_flag("--http-only", o->http_only,
                  "Serve only HTTP (the ISO and its files, e.g. for BMC virtual media)");
  serve->add_option("--node", o->node_args,
                    "MAC=ARGS: kernel arguments for one node, in its own boot entries "
                    "(repeatable), e.g. 52:54:00:12:34:56=hostname=node1");
  serve->add_option("--backup-dir", o->backup_dir,
                    "Keep overlay backups here (PUT by `isoboot overlay backup URL/overlay/NAME`); "
                    "nodes named by MAC boot with their newest one restored");
  serve->add_option("--backup-token-file", o->backup_token_file,
                    "Bearer token for the backup store (default: DIR/.token, made when missing)");
  serve->add_option("--backup-max-size", o->backup_max_size, "Largest backup accepted (K/M/G/T)")
      ->capture_default_str();
  serve->add_option("--backup-keep", o->backup_keep, "Versions kept per backup name")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  serve->add_option("--initrd-add", o->loaders.extra_initrds,
                    "Initramfs archive to load after the image's initrd (repeatable), e.g. the "
                    "overlay restore hook from contrib/dracut/make-initrd-addon.sh");
  serve->add_option("--pxelinux", o->loaders.pxelinux, "pxelinux.0 to serve")
      ->capture_default_str();
  serve->add_option("--ldlinux", o->loaders.ldlinux, "ldlinux.c32 to serve")->capture_default_str();
  serve->add_option("--undionly", o->loaders.undionly, "undionly.kpxe to serve")
      ->capture_default_str();
  serve->add_option("--ipxe-efi", o->loaders.ipxe_efi, "ipxe.efi to serve")->capture_default_str();
  serve->add_option("--snponly", o->loaders.snponly, "snponly.efi to serve")->capture_default_str();
  serve->callback([&run, o, config, serve] {
    if (!config->empty()) ApplyConfigFile(*serve, *config);
    run = [o] { return serve::Serve(*o); };
  });
}

}  // namespace isoboot::cli
