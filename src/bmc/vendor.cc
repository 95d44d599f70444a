#include "bmc/vendor.h"

#include "base/strings.h"

namespace isoboot::bmc {
namespace {

std::string StringAt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

VendorProfile DetectVendor(const nlohmann::json& root) {
  VendorProfile p;
  if (!root.is_object()) return p;
  std::string vendor = ToLower(StringAt(root, "Vendor"));
  std::string product = ToLower(StringAt(root, "Product"));
  nlohmann::json oem = root.value("Oem", nlohmann::json::object());
  if (!oem.is_object()) oem = nlohmann::json::object();
  auto has = [&](const char* k) { return oem.contains(k); };

  if (has("Hpe") || has("Hp") || vendor == "hpe" || vendor == "hp") {
    p.vendor = Vendor::kHpe;
    p.hp_oem = has("Hp") && !has("Hpe") ? "Hp" : "Hpe";
    p.name = p.hp_oem == "Hp" ? "HPE iLO 4" : "HPE iLO 5/6";
    p.patch_image_only = true;
    p.boot_on_next_server_reset = true;
    p.retry_boot_during_post = true;
  } else if (has("Dell") || vendor == "dell" || product.find("dell") != std::string::npos) {
    p.vendor = Vendor::kDell;
    p.name = "Dell iDRAC";
    p.boot_via_dell_scp = true;
  } else if (has("Supermicro") || vendor == "supermicro") {
    p.vendor = Vendor::kSupermicro;
    p.name = "Supermicro";
    p.patch_image_only = true;
    p.preferred_cd_target = "UsbCd";
  } else if (has("Ami") || vendor == "ami" || product.find("ami ") == 0) {
    p.vendor = Vendor::kAmi;
    p.name = "AMI MegaRAC";
    p.boot_full_triple = true;
    p.wait_ami_redirection = true;
  } else if (vendor == "openbmc" ||
             (root.contains("Links") && root["Links"].is_object() &&
              root["Links"].contains("ManagerProvidingService") && oem.empty() && vendor.empty())) {
    p.vendor = Vendor::kOpenBmc;
    p.name = "OpenBMC";
  }
  return p;
}

}  // namespace isoboot::bmc
