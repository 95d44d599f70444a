#pragma once
// `isoboot serve`: one process that boots clients from one live ISO. It
// opens the image, detects its layout, exports it over AoE, serves kernel,
// initrd, bootloaders and generated entries over TFTP and HTTP (plus the
// whole image over HTTP), and answers DHCP (ProxyDHCP or a full server).
// Each protocol server runs on its own thread; the calling thread handles
// SIGINT/SIGTERM, logs per-client milestones and picks up a rebuilt image.

#include <cstdint>
#include <string>
#include <vector>

#include "boot/profile.h"
#include "serve/boot_tree.h"

namespace isoboot::serve {

struct Options {
  std::string image;
  std::string interface;             // the boot network; required unless http_only
  std::string server_ip;             // default: the interface's IPv4 address
  std::string dhcp = "proxy";        // proxy | full | off
  std::string dhcp_range;            // full mode: "START,END[,NETMASK]"
  std::string lease_file;            // full mode: where leases persist
  std::string root = "aoe";          // aoe | http (KIWI); other layouts need http
  std::string aoe = "e0.1";          // the AoE target the image is exported as
  std::string append;                // extra kernel arguments
  std::string bios_loader = "ipxe";  // ipxe (undionly.kpxe, then HTTP) | pxelinux (TFTP)
  std::string uefi_loader = "ipxe.efi";
  std::string tftp_address = "0.0.0.0";
  uint16_t tftp_port = 69;
  std::string http_address = "0.0.0.0";
  uint16_t http_port = 8080;
  unsigned announce_seconds = 5;
  // Empty IPv6 router advertisements so iPXE need not wait ~16 s for IPv6
  // (serve/router_advert.h): auto = with --dhcp full only.
  std::string ipv6_ra = "auto";  // auto | on | off
  bool http_only = false;        // only the HTTP server (BMC virtual media, no interface needed)
  // Per-node kernel arguments, "MAC=ARGS" (e.g. "52:54:00:12:34:56=hostname=n1"):
  // that node gets its own boot entries with ARGS after the profile's.
  std::vector<std::string> node_args;
  // Overlay backup store at /overlay/ (serve/backup_store.h); off when empty.
  // Nodes named by MAC boot with isoboot.overlay=<their newest backup>.
  std::string backup_dir;
  std::string backup_token_file;  // default: <backup_dir>/.token, created when missing
  std::string backup_max_size = "8G";
  unsigned backup_keep = 5;
  Bootloaders loaders;
  unsigned rebuild_check_seconds = 2;
};

// Runs until SIGINT or SIGTERM; returns the exit status. Setup errors throw
// (one line naming the problem).
int Serve(const Options& options);

}  // namespace isoboot::serve
