#pragma once
// Every vendor difference the Redfish client knows, in one struct, chosen
// once from the service root (Vendor, Product, Oem keys). The flow code
// reads these flags; it never tests a vendor name itself. Pure.

#include <string>

#include <nlohmann/json.hpp>

namespace isoboot::bmc {

enum class Vendor {
  kGeneric,
  kHpe,
  kAmi,
  kDell,
  kSupermicro,
  kOpenBmc
};

struct VendorProfile {
  Vendor vendor = Vendor::kGeneric;
  std::string name = "generic Redfish";
  // OEM namespace of iLO's virtual media ("Hpe" on iLO 5/6, "Hp" on iLO 4).
  std::string hp_oem;
  // PATCH-insert sends only Image (iLO 4, Supermicro reject the rest).
  bool patch_image_only = false;
  // Set Oem.<hp_oem>.BootOnNextServerReset on the CD slot (iLO).
  bool boot_on_next_server_reset = false;
  // The standard Boot PATCH may be refused during POST: retry (iLO).
  bool retry_boot_during_post = false;
  // Send Target, Enabled and Mode together, always (AMI).
  bool boot_full_triple = false;
  // Prefer this override target when the system allows it (Supermicro).
  std::string preferred_cd_target = "Cd";
  // One-time boot to the virtual CD via ImportSystemConfiguration (iDRAC).
  bool boot_via_dell_scp = false;
  // Wait for Oem.Ami.RedirectionStatus to say "Started" (AMI).
  bool wait_ami_redirection = false;
};

VendorProfile DetectVendor(const nlohmann::json& service_root);

}  // namespace isoboot::bmc
