// Fuzzes what the Redfish client reads from a BMC's untrusted JSON: error
// bodies (ExtendedInfo into one line, MessageId and property matching) and
// service roots (vendor detection).

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bmc/errors.h"
#include "bmc/vendor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  (void)isoboot::bmc::DescribeError(400, body);
  (void)isoboot::bmc::HasMessageId(body, "PropertyMissing");
  (void)isoboot::bmc::MentionsProperty(body, "TransferProtocolType");
  (void)isoboot::bmc::DetectVendor(body);
  return 0;
}
