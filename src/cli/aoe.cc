// `isoboot aoe export|discover|read|bench`: an ATA over Ethernet target
// (vblade's job, for many clients at once) and an initiator to check and
// measure one.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "aoe/device.h"
#include "aoe/initiator.h"
#include "aoe/server.h"
#include "aoe/target.h"
#include "base/file_io.h"
#include "base/logging.h"
#include "cli/command.h"
#include "cli/signals.h"
#include "linux/packet_socket.h"
#include "linux/privilege.h"

namespace isoboot::cli {
namespace {

struct ExportArgs {
  std::vector<std::string> positional;
  std::vector<std::string> exports;
  std::vector<std::string> allow_macs;
  std::string interface;
  std::string config_string;
  std::string stats_file;
  int shelf = 0;
  int slot = 1;
  unsigned announce = 5;
  unsigned workers = 0;
  bool writable = false;
  bool sync = false;
  bool pread = false;
  bool mmap = false;  // the default; kept so that older command lines still run
};

void RequireCapNetRaw(const std::string& what) {
  if (!sys::HasCapNetRaw()) throw std::runtime_error(what + " " + sys::NeedsCapNetRawMessage());
}

int RunExport(const ExportArgs& a) {
  struct Spec {
    uint16_t shelf;
    uint8_t slot;
    std::string file;
  };
  std::vector<Spec> specs;
  std::string interface = a.interface;
  auto check = [](int shelf, int slot) {
    if (shelf < 0 || shelf >= 0xffff || slot < 0 || slot >= 0xff) {
      throw std::runtime_error(
          fmt::format("bad shelf.slot {}.{} (shelf < 65535, slot < 255)", shelf, slot));
    }
  };
  if (a.positional.size() == 4) {  // vblade's form: SHELF SLOT IFACE FILE
    int shelf = std::stoi(a.positional[0]), slot = std::stoi(a.positional[1]);
    check(shelf, slot);
    if (!interface.empty() && interface != a.positional[2]) {
      throw std::runtime_error("--interface and the positional interface differ");
    }
    interface = a.positional[2];
    specs.push_back({static_cast<uint16_t>(shelf), static_cast<uint8_t>(slot), a.positional[3]});
  } else if (a.positional.size() == 1) {
    check(a.shelf, a.slot);
    specs.push_back(
        {static_cast<uint16_t>(a.shelf), static_cast<uint8_t>(a.slot), a.positional[0]});
  } else if (!a.positional.empty()) {
    throw std::runtime_error("want FILE, or SHELF SLOT INTERFACE FILE");
  }
  for (const std::string& e : a.exports) {
    auto eq = e.find('=');
    if (eq == std::string::npos) throw std::runtime_error("--export wants SHELF.SLOT=FILE");
    auto name = OrThrow(aoe::ParseTargetName(e.substr(0, eq)));
    specs.push_back({name.first, name.second, e.substr(eq + 1)});
  }
  if (specs.empty()) throw std::runtime_error("nothing to export (give FILE or --export)");
  if (interface.empty()) throw std::runtime_error("--interface is required");
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (specs[i].shelf == specs[j].shelf && specs[i].slot == specs[j].slot) {
        throw std::runtime_error(
            fmt::format("e{}.{} exported twice", specs[i].shelf, specs[i].slot));
      }
    }
  }
  RequireCapNetRaw("aoe export");
  sys::InterfaceInfo iface = sys::LookupInterface(interface);
  std::vector<aoe::Mac> allow;
  for (const auto& m : a.allow_macs) {
    auto mac = ParseMac(m);
    if (!mac) throw std::runtime_error(fmt::format("--allow-mac {}: not a MAC address", m));
    allow.push_back(*mac);
  }

  aoe::Target target(iface.mac, aoe::Target::SectorsForMtu(iface.mtu), 16);
  for (const Spec& s : specs) {
    aoe::ExportOptions o;
    o.shelf = s.shelf;
    o.slot = s.slot;
    o.writable = a.writable;
    o.config_string = a.config_string;
    o.allow_macs = allow;
    std::unique_ptr<aoe::BlockDevice> device;
    if (!a.pread && !a.writable) {
      device = aoe::MappedDevice::Open(s.file);
    } else {
      device = aoe::FileDevice::Open(s.file, a.writable, a.sync);
    }
    target.AddExport(o, std::move(device));
  }
  aoe::ServerOptions so;
  so.iface = iface;
  so.announce_seconds = a.announce;
  so.workers = a.workers;
  so.stats_file = a.stats_file;
  StopOnSignal on_signal;  // before the server starts its workers
  Logger log = GetLogger("aoe");
  aoe::Server server(target, so, log);
  std::stop_callback stop(on_signal.token(), [&] {
    log->info("signal {}: shutting down", on_signal.signal());
    server.Stop();
  });
  server.Run();
  return 0;
}

aoe::TargetInfo FindTarget(aoe::Initiator& ini, const std::string& name, int wait_ms) {
  auto [shelf, slot] = OrThrow(aoe::ParseTargetName(name));
  auto found = ini.Discover(shelf, slot, wait_ms);
  if (found.empty()) throw std::runtime_error(fmt::format("no answer from e{}.{}", shelf, slot));
  return found.front();
}

}  // namespace

void AddAoeCommand(CLI::App& app, Run& run) {
  auto* aoe = app.add_subcommand("aoe", "ATA over Ethernet target and initiator");
  aoe->require_subcommand(1);

  auto ex = std::make_shared<ExportArgs>();
  auto* e = aoe->add_subcommand("export", "export files as AoE disks (like vblade)");
  e->add_option("args", ex->positional, "FILE, or SHELF SLOT INTERFACE FILE (vblade's order)");
  e->add_option("--interface,-i", ex->interface, "network interface");
  e->add_option("--shelf", ex->shelf, "shelf (AoE major)")->capture_default_str();
  e->add_option("--slot", ex->slot, "slot (AoE minor)")->capture_default_str();
  e->add_option("--export", ex->exports, "SHELF.SLOT=FILE (repeatable)")->allow_extra_args(false);
  e->add_flag("--writable", ex->writable, "accept writes (default: read-only, writes abort)");
  e->add_flag("--sync", ex->sync, "acknowledge writes only once on stable storage (O_DSYNC)");
  auto* mmap_flag = e->add_flag(
      "--mmap", ex->mmap,
      "read-only exports: map the file and copy from the page cache (the default: a system "
      "call less per read; reads past the end of a file that shrinks fail, as with pread)");
  e->add_flag("--pread", ex->pread, "read with a pread per request instead of --mmap")
      ->excludes(mmap_flag);
  e->add_option("--allow-mac", ex->allow_macs, "only answer this initiator MAC (repeatable)")
      ->allow_extra_args(false);
  e->add_option("--config-string", ex->config_string, "initial AoE config string");
  e->add_option("--announce", ex->announce, "seconds between unsolicited Query Config (0 = off)")
      ->capture_default_str();
  e->add_option("--workers", ex->workers, "worker threads (default: one per CPU)");
  e->add_option("--stats-file", ex->stats_file, "write per-client counters here");
  e->callback([&run, ex] { run = [ex] { return RunExport(*ex); }; });

  struct InitArgs {
    std::string target, interface, output;
    int wait_ms = 1000;
    unsigned window = 16, clients = 1;
    double seconds = 5;
  };
  auto ia = std::make_shared<InitArgs>();

  auto* d = aoe->add_subcommand("discover", "list AoE targets on an interface");
  d->add_option("--interface,-i", ia->interface, "network interface")->required();
  d->add_option("--wait", ia->wait_ms, "milliseconds to collect answers")->capture_default_str();
  d->callback([&run, ia] {
    run = [ia] {
      RequireCapNetRaw("aoe discover");
      aoe::Initiator ini(sys::LookupInterface(ia->interface), false);
      auto found = ini.Discover(aoe::kBroadcastShelf, aoe::kBroadcastSlot, ia->wait_ms);
      for (const auto& t : found) {
        fmt::print(
            "e{}.{} {} bytes {} buffers={} sectors/frame={} firmware={:#06x} model=\"{}\" "
            "serial=\"{}\" config=\"{}\"\n",
            t.shelf, t.slot, t.sectors * 512, FormatMac(t.mac), t.buffer_count, t.max_sectors,
            t.firmware_version, t.model, t.serial, t.config);
      }
      return found.empty() ? 1 : 0;
    };
  });

  auto* r = aoe->add_subcommand("read", "read an AoE disk end to end into a file");
  r->add_option("target", ia->target, "e.g. e0.1")->required();
  r->add_option("--interface,-i", ia->interface, "network interface")->required();
  r->add_option("-o,--output", ia->output, "output file")->required();
  r->add_option("--window", ia->window, "requests outstanding (capped by the target's buffers)")
      ->capture_default_str();
  r->callback([&run, ia] {
    run = [ia] {
      RequireCapNetRaw("aoe read");
      aoe::Initiator ini(sys::LookupInterface(ia->interface), false);
      auto t = FindTarget(ini, ia->target, ia->wait_ms);
      UniqueFd out = OpenOrThrow(ia->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      unsigned window = std::min<unsigned>(ia->window, std::max<unsigned>(t.buffer_count, 1));
      auto s = ini.Read(t, out.get(), window);
      if (ftruncate(out.get(), static_cast<off_t>(t.sectors * 512)) != 0) {
        throw std::runtime_error("truncate " + ia->output + " failed");
      }
      fmt::print(stderr, "read e{}.{}: {} bytes in {:.2f} s ({:.1f} MiB/s), {} retransmits\n",
                 t.shelf, t.slot, s.bytes, s.seconds, s.bytes / s.seconds / 1048576.0,
                 s.retransmits);
      return 0;
    };
  });

  auto* b = aoe->add_subcommand("bench", "load an AoE disk with simulated clients");
  b->add_option("target", ia->target, "e.g. e0.1")->required();
  b->add_option("--interface,-i", ia->interface, "network interface")->required();
  b->add_option("--clients", ia->clients, "simulated clients (own MAC each)")
      ->capture_default_str();
  b->add_option("--window", ia->window, "requests outstanding per client")->capture_default_str();
  b->add_option("--seconds", ia->seconds, "duration")->capture_default_str();
  b->callback([&run, ia] {
    run = [ia] {
      RequireCapNetRaw("aoe bench");
      aoe::Initiator ini(sys::LookupInterface(ia->interface), true);
      auto t = FindTarget(ini, ia->target, ia->wait_ms);
      auto s = ini.Bench(t, ia->clients, ia->window, ia->seconds);
      fmt::print(
          "mib_s={:.1f} frames_s={:.0f} retransmits={} requests={} seconds={:.2f} "
          "clients={} window={} sectors_per_frame={}\n",
          s.bytes / s.seconds / 1048576.0, s.requests / s.seconds, s.retransmits, s.requests,
          s.seconds, ia->clients, ia->window, t.max_sectors);
      return 0;
    };
  });
}

}  // namespace isoboot::cli
