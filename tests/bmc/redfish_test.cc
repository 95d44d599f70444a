// Pure parts of the BMC layer against real BMC data: error bodies from
// sushy's samples and service roots from the vendor mockup trees.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bmc/console.h"
#include "bmc/errors.h"
#include "bmc/vendor.h"

namespace isoboot::bmc {
namespace {

using nlohmann::json;

json Load(const std::string& rel) {
  const char* src = std::getenv("ISOBOOT_SOURCE_DIR");
  std::string path = std::string(src ? src : ".") + "/tests/bmc/redfish-mockups/" + rel;
  std::ifstream f(path);
  EXPECT_TRUE(f) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str());
}

TEST(Errors, TransferProtocolTypeMissing) {
  for (const char* f : {"transfer_proto_required_error.json", "transfer_proto_required_error2.json",
                        "transfer_proto_required_error3.json"}) {
    json e = Load(std::string("sushy-samples/") + f);
    EXPECT_TRUE(MentionsProperty(e, "TransferProtocolType")) << f;
    EXPECT_FALSE(MentionsProperty(e, "TransferMethod")) << f;
    EXPECT_FALSE(MentionsProperty(e, "UserName")) << f;
  }
  EXPECT_TRUE(HasMessageId(Load("sushy-samples/transfer_proto_required_error.json"),
                           ".ActionParameterMissing"));
}

TEST(Errors, TransferMethodAndCredentials) {
  json m = Load("sushy-samples/transfer_method_required_error.json");
  EXPECT_TRUE(MentionsProperty(m, "TransferMethod"));
  EXPECT_FALSE(MentionsProperty(m, "TransferProtocolType"));
  json c = Load("sushy-samples/credentials_required_error.json");
  EXPECT_TRUE(MentionsProperty(c, "UserName"));
  EXPECT_TRUE(MentionsProperty(c, "Password"));
  EXPECT_FALSE(MentionsProperty(c, "TransferMethod"));
}

TEST(Errors, DescribeIsOneLine) {
  std::string d = DescribeError(400, Load("sushy-samples/error.json"));
  EXPECT_EQ(d.find('\n'), std::string::npos);
  EXPECT_NE(d.find("HTTP 400: The value Red for the property IndicatorLED"), std::string::npos);
  EXPECT_NE(d.find("; The property SKU is a read only property"), std::string::npos);
  // iLO 6 sends only a MessageId; iLO puts Success entries in error objects.
  json ilo = json::parse(R"({"error":{"code":"iLO.0.10.ExtendedInfo","@Message.ExtendedInfo":[
      {"MessageId":"Base.1.4.Success"},{"MessageId":"iLO.2.15.UnableToModifyDuringSystemPOST"}]}})");
  EXPECT_EQ(DescribeError(400, ilo), "HTTP 400: iLO.2.15.UnableToModifyDuringSystemPOST");
  EXPECT_TRUE(HasMessageId(ilo, "UnableToModifyDuringSystemPOST"));
  EXPECT_EQ(DescribeError(503, json()), "HTTP 503");
  EXPECT_EQ(DescribeError(500, json::parse(R"({"error":{"message":"boom"}})")), "HTTP 500: boom");
}

TEST(Vendor, DetectedFromServiceRoots) {
  VendorProfile ilo = DetectVendor(Load("hpe-ilo5-dl325/index.json"));
  EXPECT_EQ(ilo.vendor, Vendor::kHpe);
  EXPECT_EQ(ilo.hp_oem, "Hpe");
  EXPECT_TRUE(ilo.boot_on_next_server_reset);
  VendorProfile ami = DetectVendor(Load("ami-megarac-gigabyte/index.json"));
  EXPECT_EQ(ami.vendor, Vendor::kAmi);
  EXPECT_TRUE(ami.boot_full_triple);
  EXPECT_EQ(DetectVendor(Load("idrac9-r640-partial/index.json")).vendor, Vendor::kDell);
  EXPECT_EQ(DetectVendor(Load("openbmc-stock/index.json")).vendor, Vendor::kOpenBmc);
  EXPECT_EQ(DetectVendor(Load("dmtf-public-rackmount1/index.json")).vendor, Vendor::kGeneric);
  VendorProfile smc =
      DetectVendor(json::parse(R"({"Vendor":"Supermicro","Oem":{"Supermicro":{}}})"));
  EXPECT_EQ(smc.preferred_cd_target, "UsbCd");
  EXPECT_EQ(DetectVendor(json::parse(R"({"Oem":{"Hp":{}}})")).hp_oem, "Hp");
}

TEST(Console, HostOnly) {
  EXPECT_EQ(HostOnly("bmc1"), "bmc1");
  EXPECT_EQ(HostOnly("10.0.0.5:443"), "10.0.0.5");
  EXPECT_EQ(HostOnly("https://bmc1.lab:8443/redfish"), "bmc1.lab");
  EXPECT_EQ(HostOnly("[fe80::1]:443"), "fe80::1");
  EXPECT_EQ(HostOnly("fe80::1"), "fe80::1");
}

}  // namespace
}  // namespace isoboot::bmc
