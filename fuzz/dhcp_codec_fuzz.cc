// libFuzzer target for the DHCP codec and the answers built from its output:
// any input must either be rejected with a reason or parse into a Message
// that re-encodes, re-parses to the same value, and can be answered in both
// modes without crashing.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dhcp/codec.h"
#include "dhcp/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace isoboot::dhcp;
  auto parsed = Parse(std::span<const uint8_t>(data, size));
  if (!parsed) return 0;
  std::vector<uint8_t> wire;
  Append(*parsed, wire);
  auto again = Parse(wire);
  if (!again) __builtin_trap();
  // sname/file are truncated to their fields, so only the re-encoding is
  // required to be stable.
  std::vector<uint8_t> wire2;
  Append(*again, wire2);
  if (wire != wire2) __builtin_trap();
  for (Mode mode : {Mode::kProxy, Mode::kFull}) {
    ProtocolConfig config;
    config.mode = mode;
    config.server_ip = 0x0a000001;
    config.ranges = {{0x0a000010, 0x0a000020}, {0x0a090010, 0x0a090020}};  // one relayed
    config.ipxe_script_url = "http://10.0.0.1/boot.ipxe";
    Protocol protocol(config);
    for (bool proxy_port : {false, true}) {
      Outcome out = protocol.Handle(*parsed, proxy_port, 0x0a000005, 68, 1000);
      if (out.reply) {
        std::vector<uint8_t> reply;
        Append(*out.reply, reply);
        if (!Parse(reply)) __builtin_trap();
      }
    }
  }
  return 0;
}
