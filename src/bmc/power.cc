// One-time boot override to the virtual CD (standard, iLO's
// BootOnNextServerReset, iDRAC's ImportSystemConfiguration) or to the
// network (standard), and the reset with power-state watch.

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bmc/client.h"

namespace isoboot::bmc {
namespace {

using nlohmann::json;

// iDRAC's "boot once from the virtual CD" (the standard override would pick
// a physical optical drive). No whitespace inside the XML: iDRAC is strict.
constexpr const char* kDellBootOnceVcd =
    "<SystemConfiguration><Component FQDD=\"iDRAC.Embedded.1\">"
    "<Attribute Name=\"ServerBoot.1#BootOnce\">Enabled</Attribute>"
    "<Attribute Name=\"ServerBoot.1#FirstBootDevice\">VCD-DVD</Attribute>"
    "</Component></SystemConfiguration>";

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

void BmcClient::BootOnce(BootTarget target) {
  Discover();
  boot_target_ = target;
  if (target == BootTarget::kPxe) {
    // The standard override on every vendor, iDRAC included: the iDRAC 9
    // system lists Pxe among its override targets, and Dell's own
    // iDRAC-Redfish-Scripting (SetNextOneTimeBootDeviceREDFISH.py,
    // "--device Pxe") sets a one-time PXE boot with this very PATCH.
    // ImportSystemConfiguration is kept for the CD, where the standard Cd
    // picks the physical drive on iDRAC firmware before 4.40; for PXE it
    // would only add a configuration job to wait for. iLO's
    // BootOnNextServerReset is a flag of the CD slot: nothing for PXE.
    Progress("setting one-time network boot (Pxe)");
    BootStandard(target, false);
    return;
  }
  Progress("setting one-time boot");
  if (profile_.boot_via_dell_scp && BootViaDellScp()) return;
  bool oem_done = profile_.boot_on_next_server_reset && BootViaHpeFlag();
  BootStandard(target, oem_done);
}

bool BmcClient::BootViaDellScp() {
  for (const auto& m : manager_paths_) {
    json manager = rf_.GetJson(m);
    json oem = manager.value("Actions", json::object()).value("Oem", json::object());
    for (auto it = oem.begin(); it != oem.end(); ++it) {
      const std::string& key = it.key();
      if (key.find("#OemManager.ImportSystemConfiguration") == std::string::npos ||
          key.find("Preview") != std::string::npos || !it->is_object()) {
        continue;
      }
      json body = {{"ShareParameters", {{"Target", "ALL"}}}, {"ImportBuffer", kDellBootOnceVcd}};
      Reply r = rf_.Post(it->value("target", ""), body);
      r = WaitTask(r, Failure::kBootOverride, "one-time boot to the virtual CD");
      if (!r.ok()) Fail(Failure::kBootOverride, "one-time boot to the virtual CD", r);
      return true;
    }
  }
  return false;
}

bool BmcClient::BootViaHpeFlag() {
  Slot s = FindCdSlot();
  json oem = s.body.value("Oem", json::object());
  if (!oem.is_object() || !oem.contains(profile_.hp_oem) ||
      !oem[profile_.hp_oem].contains("BootOnNextServerReset")) {
    return false;
  }
  json body = {{"Oem", {{profile_.hp_oem, {{"BootOnNextServerReset", true}}}}}};
  Reply r = WaitTask(rf_.Patch(s.path, body, s.etag), Failure::kBootOverride, "boot once");
  if (!r.ok()) {
    log_->warn("{}: BootOnNextServerReset refused ({})", host_, DescribeError(r.status, r.body));
    return false;
  }
  return true;
}

void BmcClient::BootStandard(BootTarget via, bool other_route_done) {
  // The override targets to use, best first.
  std::vector<std::string> targets = {"Pxe"};
  if (via == BootTarget::kVirtualCd) targets = {profile_.preferred_cd_target, "Cd"};
  std::string what = via == BootTarget::kPxe ? "the network (Pxe)" : "the CD";
  bool retried_412 = false;
  Reply r;
  for (int attempt = 0; attempt <= options_.post_retries; ++attempt) {
    Reply sys = rf_.Get(system_path_);
    if (!sys.ok()) Fail(Failure::kBootOverride, "GET " + system_path_, sys);
    json boot = sys.body.value("Boot", json::object());
    auto allowed = Strings(boot.value("BootSourceOverrideTarget@Redfish.AllowableValues", json()));
    // A system that lists no allowed targets takes them all.
    auto it = std::find_if(targets.begin(), targets.end(), [&allowed](const std::string& t) {
      return allowed.empty() || Contains(allowed, t);
    });
    if (it == targets.end()) {
      throw BmcError(
          Failure::kBootOverride,
          fmt::format("{}: the system does not allow a boot override to {} (allowed: {})", host_,
                      targets.back(), fmt::join(allowed, ", ")));
    }
    const std::string& target = *it;
    json want = {{"BootSourceOverrideTarget", target}, {"BootSourceOverrideEnabled", "Once"}};
    std::string mode = options_.boot_mode;
    if (mode.empty() && profile_.boot_full_triple) {
      mode = boot.value("BootSourceOverrideMode", "UEFI");
    }
    if (!mode.empty()) want["BootSourceOverrideMode"] = mode;
    r = rf_.Patch(system_path_, json{{"Boot", want}}, sys.etag);
    if (r.ok()) {
      WaitTask(r, Failure::kBootOverride, "boot override");
      return;
    }
    if (r.status == 412 && !retried_412) {
      retried_412 = true;  // stale ETag: GET again and retry once
      continue;
    }
    if (profile_.retry_boot_during_post && HasMessageId(r.body, "UnableToModifyDuringSystemPOST")) {
      Progress("system is in POST, retrying the boot override");
      Sleep();
      continue;
    }
    break;
  }
  if (other_route_done) {
    // BootOnNextServerReset (which iLO accepts during POST) already covers it.
    log_->info("{}: standard boot override refused ({}); BootOnNextServerReset is set", host_,
               DescribeError(r.status, r.body));
    return;
  }
  Fail(Failure::kBootOverride, "one-time boot override to " + what + " refused", r);
}

void BmcClient::Reset() {
  Discover();
  json sys = rf_.GetJson(system_path_);
  std::string power = sys.value("PowerState", "");
  json action = sys.value("Actions", json::object()).value("#ComputerSystem.Reset", json());
  if (!action.is_object() || !action.contains("target")) {
    throw BmcError(Failure::kPower, host_ + ": the system has no ComputerSystem.Reset action");
  }
  auto allowed = Strings(action.value("ResetType@Redfish.AllowableValues", json()));
  if (allowed.empty() && action.contains("@Redfish.ActionInfo")) {
    Reply info = rf_.Get(action["@Redfish.ActionInfo"].get<std::string>());
    if (info.ok() && info.body.contains("Parameters") && info.body["Parameters"].is_array()) {
      for (const auto& p : info.body["Parameters"]) {
        if (p.value("Name", "") == "ResetType")
          allowed = Strings(p.value("AllowableValues", json()));
      }
    }
  }
  std::vector<std::string> prefs =
      power == "Off" ? std::vector<std::string>{"On", "ForceOn", "PowerCycle"}
                     : std::vector<std::string>{"ForceRestart", "GracefulRestart", "PowerCycle"};
  // A BMC that lists no allowed values takes them all.
  auto may = [&allowed](const std::string& t) { return allowed.empty() || Contains(allowed, t); };
  std::string type;
  for (const auto& p : prefs) {
    if (may(p)) {
      type = p;
      break;
    }
  }
  if (type.empty()) {
    throw BmcError(Failure::kPower, fmt::format("{}: no usable ResetType (power {}, allowed: {})",
                                                host_, power, fmt::join(allowed, ", ")));
  }
  Progress(fmt::format("reset ({}, power was {})", type, power.empty() ? "?" : power));
  std::string target = action["target"].get<std::string>();
  auto post = [&](const std::string& t) {
    Reply r = WaitTask(rf_.Post(target, json{{"ResetType", t}}), Failure::kPower, "reset");
    if (!r.ok()) Fail(Failure::kPower, "reset " + t + " refused", r);
  };
  post(type);
  if (power == "Off") {
    WatchPower("On");  // Off, then On: the transition itself is the evidence
    return;
  }
  if (WatchRestart(BootStamp(sys))) return;
  // Nothing showed that the host went down or started a new boot: power
  // it off and on, a transition PowerState cannot hide, with the one-time
  // boot override set again.
  std::string on = may("On") ? "On" : "ForceOn";
  if (!may("ForceOff") || !may(on)) {
    throw BmcError(Failure::kPower,
                   fmt::format("{}: no sign that the host restarted after {} (PowerState stays On, "
                               "no boot progress), and it offers no ForceOff and On to make sure",
                               host_, type));
  }
  Progress("no sign of the restart; powering off and on");
  post("ForceOff");
  WatchPower("Off");
  // A restart the BMC did not show may have used up the one-time override.
  if (boot_target_) BootOnce(*boot_target_);
  post(on);
  WatchPower("On");
}

std::string BmcClient::BootStamp(const json& system) {
  // Where a BMC shows that a new boot began: Redfish BootProgress (its last
  // state and when it was reached) and iLO's POST state.
  std::string stamp;
  json progress = system.value("BootProgress", json::object());
  // append(), not "x" + string: GCC 12 at -O3 warns of an overlapping
  // memcpy inside that operator+ (a false -Wrestrict).
  if (progress.is_object()) {
    stamp.append(progress.value("LastState", ""))
        .append("@")
        .append(progress.value("LastStateTime", ""));
  }
  json hpe = system.value("Oem", json::object()).value("Hpe", json::object());
  if (hpe.is_object()) stamp.append("/").append(hpe.value("PostState", ""));
  return stamp;
}

bool BmcClient::WatchRestart(const std::string& before) {
  // Success needs the host seen going down (PowerState not On) or a new
  // boot seen starting (the boot stamp changed), and then On. A host that
  // went down and stays down fails; one that shows nothing within ~15 s
  // returns false.
  int quiet = std::clamp(static_cast<int>(15 / std::max(options_.poll_interval_s, 0.001)), 3,
                         std::max(options_.power_polls, 3));
  bool went_down = false;
  bool new_boot = false;
  std::string state;
  for (int i = 0; i < options_.power_polls; ++i) {
    Sleep();
    Reply r = rf_.Get(system_path_);
    if (!r.ok()) continue;
    state = r.body.value("PowerState", "");
    if (!state.empty() && state != "On") went_down = true;
    if (BootStamp(r.body) != before) new_boot = true;
    if ((went_down || new_boot) && state == "On") {
      Progress(went_down ? "power On (the host went down and came back)"
                         : "power On (a new boot started)");
      return true;
    }
    if (!went_down && !new_boot && i + 1 >= quiet) return false;
    Progress("waiting for the restart (power " + (state.empty() ? "?" : state) + ")");
  }
  throw BmcError(Failure::kPower,
                 fmt::format("{}: the host went down after the reset and did not come back: "
                             "PowerState {} after {} checks",
                             host_, state.empty() ? "unknown" : state, options_.power_polls));
}

void BmcClient::WatchPower(const std::string& want) {
  std::string state;
  for (int i = 0; i < options_.power_polls; ++i) {
    Reply r = rf_.Get(system_path_);
    if (r.ok()) state = r.body.value("PowerState", "");
    if (state == want) {
      Progress("power " + want);
      return;
    }
    Progress("waiting for power " + want + " (now " + (state.empty() ? "?" : state) + ")");
    Sleep();
  }
  throw BmcError(Failure::kPower,
                 fmt::format("{}: the system did not reach power {} after {} "
                             "checks (PowerState stays {})",
                             host_, want, options_.power_polls, state.empty() ? "unknown" : state));
}

}  // namespace isoboot::bmc
