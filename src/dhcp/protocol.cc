#include "dhcp/protocol.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot::dhcp {
namespace {

constexpr uint16_t kClientPort = 68;
constexpr uint16_t kServerPort = 67;
constexpr Ip4 kBroadcastIp = 0xffffffff;
// How long an offered (not yet requested) address stays reserved.
constexpr int64_t kOfferHoldSeconds = 60;
constexpr uint64_t kMaxRangeSize = 65536;

}  // namespace

// "PXEClient:Arch:00007:UNDI:003016" carries the architecture too; clients
// that omit option 93 are old BIOS ROMs.
uint16_t ArchOf(const Message& m) {
  if (auto a = m.ClientArch()) return *a;
  std::string vc = m.GetString(opt::kVendorClass);
  constexpr std::string_view kPrefix = "PXEClient:Arch:";
  if (vc.size() >= kPrefix.size() + 5 && vc.compare(0, kPrefix.size(), kPrefix) == 0) {
    unsigned v = 0;
    const char* p = vc.data() + kPrefix.size();
    auto [next, ec] = std::from_chars(p, p + 5, v);
    if (ec == std::errc() && next == p + 5 && v <= 0xffff) return static_cast<uint16_t>(v);
  }
  return arch::kBios;
}

bool IsPxeClient(const Message& m) {
  return m.GetString(opt::kVendorClass).starts_with("PXEClient");
}

bool IsIpxe(const Message& m) {
  if (m.Find(opt::kIpxe)) return true;
  const Option* uc = m.Find(opt::kUserClass);
  if (!uc) return false;
  std::string_view raw(reinterpret_cast<const char*>(uc->data.data()), uc->data.size());
  if (raw == "iPXE") return true;
  // RFC 3004 framing: length-prefixed instances.
  for (size_t i = 0; i < raw.size();) {
    size_t n = static_cast<uint8_t>(raw[i]);
    if (i + 1 + n > raw.size()) break;
    if (raw.substr(i + 1, n) == "iPXE") return true;
    i += 1 + n;
  }
  return false;
}

Result<void> ParseRange(std::string_view text, ProtocolConfig& config) {
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    size_t comma = text.find(',', pos);
    parts.push_back(Trim(text.substr(pos, comma == std::string_view::npos ? comma : comma - pos)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return MakeError(fmt::format("DHCP range '{}' is not START,END[,NETMASK]", text));
  }
  auto start = ParseIp(parts[0]);
  auto end = ParseIp(parts[1]);
  if (!start || !end) return MakeError(fmt::format("DHCP range '{}' has a bad address", text));
  if (*end < *start) return MakeError(fmt::format("DHCP range '{}' ends before it starts", text));
  if (uint64_t{*end} - *start + 1 > kMaxRangeSize) {
    return MakeError(
        fmt::format("DHCP range '{}' holds more than {} addresses", text, kMaxRangeSize));
  }
  Range range{*start, *end};
  if (parts.size() == 3) {
    auto mask = ParseIp(parts[2]);
    // A netmask is ones then zeros: ~mask + 1 is then a power of two.
    if (!mask || ((~*mask + 1) & ~*mask) != 0) {
      return MakeError(fmt::format("DHCP range '{}' has a bad netmask", text));
    }
    range.netmask = *mask;
  }
  if (!range.OnSubnet(*end)) {
    return MakeError(fmt::format("DHCP range '{}' spans more than one subnet", text));
  }
  for (const Range& other : config.ranges) {
    if (other.OnSubnet(range.start) || range.OnSubnet(other.start)) {
      return MakeError(fmt::format("DHCP range '{}' is on the subnet of range {},{}", text,
                                   FormatIp(other.start), FormatIp(other.end)));
    }
  }
  config.ranges.push_back(range);
  return {};
}

const Range* RangeFor(const ProtocolConfig& config, const Message& request) {
  // Relayed: the relay's address on the client's subnet (RFC 2131 4.3.1).
  // Not relayed but with ciaddr: a client renewing (RFC 2131 4.3.2, unicast
  // straight to us, also from behind a router) or informing, on its subnet.
  Ip4 key = request.giaddr ? request.giaddr : request.ciaddr ? request.ciaddr : config.server_ip;
  for (const Range& range : config.ranges) {
    if (range.OnSubnet(key)) return &range;
  }
  // One range and a directly attached client: that range, as before ranges
  // were per subnet (the server's own address may be elsewhere).
  if (!request.giaddr && !request.ciaddr && config.ranges.size() == 1) return &config.ranges[0];
  return nullptr;
}

void EchoRelayAgentInfo(const Message& request, Message& reply) {
  std::erase_if(reply.options, [](const Option& o) { return o.code == opt::kRelayAgentInfo; });
  if (const Option* info = request.Find(opt::kRelayAgentInfo)) reply.options.push_back(*info);
}

Protocol::Protocol(ProtocolConfig config) : config_(std::move(config)) {}

Outcome Protocol::Handle(const Message& request, bool proxy_port, Ip4 src_ip, uint16_t src_port,
                         int64_t now) {
  Outcome out;
  auto type = request.Type();
  if (request.op != kBootRequest) {
    out.note = "not a BOOTREQUEST";
    return out;
  }
  if (!type) {
    out.note = "BOOTP without a DHCP message type";
    return out;
  }
  if (request.htype != 1 || request.hlen != 6) {
    out.note =
        fmt::format("hardware type {} length {} is not Ethernet", request.htype, request.hlen);
    return out;
  }
  if (config_.mode == Mode::kOff) {
    out.note = "DHCP is off";
    return out;
  }
  if (config_.mode == Mode::kFull && !proxy_port) {
    out = HandleFull(request, now);
  } else {
    out = HandleProxy(request, proxy_port, src_ip, src_port);
  }
  // INFORM is not reported: its ciaddr is whatever the sender claims, and
  // neither a PXE ROM (DISCOVER, REQUEST, then REQUEST on 4011) nor iPXE
  // sends one while booting.
  if (*type == MessageType::kDiscover || *type == MessageType::kRequest) {
    Ip4 ip = out.reply && out.reply->yiaddr ? out.reply->yiaddr : request.ciaddr;
    if (!ip) ip = request.GetIp(opt::kRequestedIp).value_or(0);
    out.client = Report(ClientEvent{request.Mac(), ip, IsPxeClient(request), ArchOf(request),
                                    IsIpxe(request), request.giaddr},
                        now);
  }
  out.relayed_by = request.giaddr;
  if (out.reply) EchoRelayAgentInfo(request, *out.reply);
  if (out.reply && !proxy_port) {
    // RFC 2131 4.1: relay agent, else the client's own address, else
    // broadcast (we cannot unicast to an address the client does not have yet
    // without writing its ARP entry ourselves).
    if (request.giaddr) {
      out.dest_ip = request.giaddr;
      out.dest_port = kServerPort;
      // RFC 2131 4.3.2: a NAK through a relay has the broadcast bit, so the
      // relay broadcasts it (the client's address may be wrong there).
      if (out.reply->Type() == MessageType::kNak) out.reply->flags |= kFlagBroadcast;
    } else if (request.ciaddr && out.reply->Type() != MessageType::kNak) {
      out.dest_ip = request.ciaddr;
      out.dest_port = kClientPort;
    } else {
      out.dest_ip = kBroadcastIp;
      out.dest_port = kClientPort;
    }
  }
  return out;
}

std::optional<ClientEvent> Protocol::Report(const ClientEvent& event, int64_t now) {
  Reported* r = reported_.Find(event.mac);
  if (!r) {
    reported_.Put(event.mac, Reported{event, now, now, 1});
    return event;
  }
  bool same =
      r->last.ip == event.ip && r->last.is_pxe == event.is_pxe && r->last.ipxe == event.ipxe;
  if (same && now - r->last_at < kReportWindowSeconds) return std::nullopt;
  if (now - r->window_start >= kReportWindowSeconds || now < r->window_start) {
    r->window_start = now;
    r->count = 0;
  }
  if (r->count >= kMaxReportsPerWindow) return std::nullopt;
  ++r->count;
  r->last = event;
  r->last_at = now;
  return event;
}

Message Protocol::ReplyTo(const Message& request, MessageType type) const {
  Message r;
  r.op = kBootReply;
  r.htype = request.htype;
  r.hlen = request.hlen;
  r.xid = request.xid;
  r.flags = request.flags;
  r.giaddr = request.giaddr;
  r.chaddr = request.chaddr;
  r.SetU8(opt::kMessageType, static_cast<uint8_t>(type));
  r.SetIp(opt::kServerId, config_.server_ip);
  return r;
}

bool Protocol::AddBootInfo(const Message& request, Message& reply, std::string& note) const {
  uint16_t a = ArchOf(request);
  bool ipxe = IsIpxe(request);
  std::string file;
  if (ipxe && !config_.ipxe_script_url.empty()) {
    file = config_.ipxe_script_url;
  } else if (a == arch::kBios) {
    file = config_.bios_file;
  } else if (a == arch::kEfiX64 || a == arch::kEfiBc) {
    file = config_.uefi_x64_file;
  } else if (a == arch::kEfiArm64) {
    file = config_.uefi_arm64_file;
  }
  if (file.empty()) {
    note = fmt::format("no boot file for client architecture {}", a);
    return false;
  }
  reply.siaddr = config_.server_ip;
  reply.file = file;
  if (IsPxeClient(request)) {
    reply.SetString(opt::kVendorClass, "PXEClient");
    if (const Option* uuid = request.Find(opt::kClientUuid)) reply.Set(uuid->code, uuid->data);
    if (!ipxe) {
      std::vector<uint8_t> vendor;
      Option control{pxe::kDiscoveryControl, {pxe::kUseBootfile}};
      AppendSubOptions(std::span<const Option>(&control, 1), vendor);
      reply.Set(opt::kVendorSpecific, vendor);
    }
  }
  reply.SetString(opt::kTftpServer, FormatIp(config_.server_ip));
  reply.SetString(opt::kBootfile, file);
  note = fmt::format("boot file {} (arch {}{})", file, a, ipxe ? ", iPXE" : "");
  return true;
}

void Protocol::AddNetConfig(const Range& range, Ip4 giaddr, Message& reply) const {
  reply.SetIp(opt::kSubnetMask, range.netmask);
  // A relayed client's way out of its subnet is the relay (RFC 2131 4.3.1
  // leaves it to the server; the relay agent sits on the router).
  if (Ip4 router = giaddr ? giaddr : config_.router) reply.SetIp(opt::kRouter, router);
  if (!config_.dns_servers.empty()) reply.SetIps(opt::kDnsServer, config_.dns_servers);
  reply.SetIp(opt::kBroadcast, (range.start & range.netmask) | ~range.netmask);
}

Outcome Protocol::HandleProxy(const Message& request, bool proxy_port, Ip4 src_ip,
                              uint16_t src_port) {
  Outcome out;
  auto type = *request.Type();
  if (!IsPxeClient(request)) {
    out.note = fmt::format("{} from a non-PXE client", TypeName(type));
    return out;
  }
  Message reply;
  if (proxy_port) {
    if (type != MessageType::kRequest && type != MessageType::kInform) {
      out.note = fmt::format("{} on the PXE port", TypeName(type));
      return out;
    }
    reply = ReplyTo(request, MessageType::kAck);
    reply.ciaddr = request.ciaddr;
    out.dest_ip = src_ip;
    out.dest_port = src_port;
  } else if (type == MessageType::kDiscover) {
    reply = ReplyTo(request, MessageType::kOffer);
  } else if (type == MessageType::kRequest &&
             request.GetIp(opt::kServerId) == std::optional<Ip4>(config_.server_ip) &&
             request.GetIp(opt::kRequestedIp).value_or(0) == 0) {
    // A request naming an address completes an address offer, which a proxy
    // never makes: it is for a DHCP server on this same host (same server
    // id), and an ACK from us without an address would make the client
    // decline its lease (seen with OVMF beside dnsmasq on one host). A
    // client that selects our offer as such (busybox udhcpc) names its
    // yiaddr, 0.0.0.0: that one is ours.
    reply = ReplyTo(request, MessageType::kAck);
    reply.ciaddr = request.ciaddr;
  } else {
    out.note = fmt::format("{} for the site DHCP server", TypeName(type));
    return out;
  }
  if (!AddBootInfo(request, reply, out.note)) return out;
  out.note = fmt::format("{} {}", TypeName(*reply.Type()), out.note);
  out.reply = std::move(reply);
  return out;
}

bool Protocol::InRange(const Range* range, Ip4 ip) const {
  if (ip == config_.server_ip) return false;
  if (range) return range->Contains(ip);
  return std::any_of(config_.ranges.begin(), config_.ranges.end(),
                     [ip](const Range& r) { return r.Contains(ip); });
}

bool Protocol::AddressFree(const Range& range, Ip4 ip, const MacAddress& mac, int64_t now) const {
  if (!InRange(&range, ip)) return false;
  if (auto d = declined_.find(ip); d != declined_.end() && d->second > now) return false;
  for (const auto& [other, lease] : leases_) {
    if (other != mac && lease.ip == ip && lease.expires > now) return false;
  }
  return true;
}

std::optional<Ip4> Protocol::PickAddress(const Range& range, const Message& request,
                                         int64_t now) const {
  MacAddress mac = request.Mac();
  // The same client gets the same address back, PXE ROM or not (on the same
  // subnet: a lease belongs to the range its address is in).
  if (auto it = leases_.find(mac);
      it != leases_.end() && AddressFree(range, it->second.ip, mac, now)) {
    return it->second.ip;
  }
  auto never_used = [&](Ip4 ip) {
    for (const auto& [other, lease] : leases_) {
      if (lease.ip == ip) return false;
    }
    return true;
  };
  if (auto want = request.GetIp(opt::kRequestedIp);
      want && AddressFree(range, *want, mac, now) && never_used(*want)) {
    return *want;
  }
  for (uint64_t ip = range.start; ip <= range.end; ++ip) {
    if (AddressFree(range, static_cast<Ip4>(ip), mac, now) && never_used(static_cast<Ip4>(ip))) {
      return static_cast<Ip4>(ip);
    }
  }
  for (uint64_t ip = range.start; ip <= range.end; ++ip) {
    if (AddressFree(range, static_cast<Ip4>(ip), mac, now)) return static_cast<Ip4>(ip);
  }
  return std::nullopt;
}

Outcome Protocol::HandleFull(const Message& request, int64_t now) {
  Outcome out;
  auto type = *request.Type();
  MacAddress mac = request.Mac();
  bool pxe = IsPxeClient(request);
  const Range* range = RangeFor(config_, request);
  if (!range && (type == MessageType::kDiscover || type == MessageType::kRequest ||
                 type == MessageType::kInform)) {
    if (request.giaddr) {
      out.no_range = true;
      out.note = fmt::format("no range for relay {}", FormatIp(request.giaddr));
    } else if (request.ciaddr) {
      out.note = fmt::format("no range for client address {}", FormatIp(request.ciaddr));
    } else {
      out.note = "no range for directly attached clients (none on the server's subnet)";
    }
    return out;
  }
  auto assign = [&](Ip4 ip, int64_t expires, bool acked) {
    std::erase_if(leases_, [&](const auto& kv) { return kv.first != mac && kv.second.ip == ip; });
    leases_[mac] = Lease{mac, ip, expires, acked};
  };
  auto answer = [&](MessageType t, Ip4 yiaddr) {
    Message reply = ReplyTo(request, t);
    reply.yiaddr = yiaddr;
    if (t != MessageType::kNak) {
      if (t != MessageType::kAck || yiaddr) reply.SetU32(opt::kLeaseTime, config_.lease_seconds);
      AddNetConfig(*range, request.giaddr, reply);
      std::string boot;
      if (pxe && AddBootInfo(request, reply, boot)) out.note += ", " + boot;
    }
    out.note = fmt::format("{} {}{}", TypeName(t), FormatIp(yiaddr), out.note);
    out.reply = std::move(reply);
  };
  switch (type) {
    case MessageType::kDiscover: {
      auto ip = PickAddress(*range, request, now);
      if (!ip) {
        out.note = "no free address in the DHCP range";
        return out;
      }
      auto it = leases_.find(mac);
      if (it == leases_.end() || it->second.ip != *ip || !it->second.acked) {
        assign(*ip, now + kOfferHoldSeconds, false);
      }
      answer(MessageType::kOffer, *ip);
      return out;
    }
    case MessageType::kRequest: {
      auto server = request.GetIp(opt::kServerId);
      if (server && *server != config_.server_ip) {
        if (auto it = leases_.find(mac); it != leases_.end() && !it->second.acked)
          leases_.erase(it);
        out.note = fmt::format("client chose server {}", FormatIp(*server));
        return out;
      }
      Ip4 want = request.GetIp(opt::kRequestedIp).value_or(request.ciaddr);
      if (!want) {
        out.note = "DHCPREQUEST without an address";
        return out;
      }
      if (AddressFree(*range, want, mac, now)) {
        assign(want, now + config_.lease_seconds, true);
        out.leases_changed = true;
        answer(MessageType::kAck, want);
      } else {
        answer(MessageType::kNak, 0);
        out.note += fmt::format(" ({} is not available)", FormatIp(want));
      }
      return out;
    }
    case MessageType::kDecline: {
      Ip4 ip = request.GetIp(opt::kRequestedIp).value_or(0);
      auto it = leases_.find(mac);
      if (it == leases_.end() || it->second.ip != ip || !InRange(nullptr, ip)) {
        // Only the address we gave this MAC can be declined: anything else
        // would let any sender block the whole range (and grow this map).
        out.note =
            fmt::format("{} declined {}, which it does not hold", FormatMac(mac), FormatIp(ip));
        return out;
      }
      if (it->second.acked) out.leases_changed = true;
      leases_.erase(it);
      declined_[ip] = now + config_.lease_seconds;
      out.note = fmt::format("{} declined {}", FormatMac(mac), FormatIp(ip));
      return out;
    }
    case MessageType::kRelease: {
      if (auto it = leases_.find(mac); it != leases_.end() && it->second.ip == request.ciaddr) {
        it->second.expires = now;  // kept, so the client gets it back later
        out.leases_changed = true;
      }
      out.note = fmt::format("{} released {}", FormatMac(mac), FormatIp(request.ciaddr));
      return out;
    }
    case MessageType::kInform:
      answer(MessageType::kAck, 0);
      out.reply->ciaddr = request.ciaddr;
      return out;
    default:
      out.note = fmt::format("{} from a client", TypeName(type));
      return out;
  }
}

std::string Protocol::SaveLeases() const {
  std::string text = "# isoboot DHCP leases: MAC IP EXPIRES(unix seconds)\n";
  for (const auto& [mac, lease] : leases_) {
    if (!lease.acked) continue;
    text += fmt::format("{} {} {}\n", FormatMac(mac), FormatIp(lease.ip), lease.expires);
  }
  return text;
}

Result<void> Protocol::LoadLeases(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string_view s = Trim(line);
    if (s.empty() || s.front() == '#') continue;
    std::istringstream fields{std::string(s)};
    std::string mac_text, ip_text;
    int64_t expires = 0;
    if (!(fields >> mac_text >> ip_text >> expires)) {
      return MakeError(fmt::format("lease line {} is not 'MAC IP EXPIRES'", n));
    }
    auto mac = ParseMac(mac_text);
    auto ip = ParseIp(ip_text);
    if (!mac || !ip) return MakeError(fmt::format("lease line {} has a bad MAC or IP", n));
    leases_[*mac] = Lease{*mac, *ip, expires, true};
  }
  return {};
}

}  // namespace isoboot::dhcp
