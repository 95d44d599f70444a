#include "bmc/client.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/strings.h"

namespace isoboot::bmc {
namespace {

using nlohmann::json;

std::string Link(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return "";
  return it->value("@odata.id", "");
}

std::vector<std::string> Members(const json& collection) {
  std::vector<std::string> out;
  auto it = collection.find("Members");
  if (it == collection.end() || !it->is_array()) return out;
  for (const auto& m : *it) {
    if (m.is_object() && m.contains("@odata.id")) out.push_back(m["@odata.id"].get<std::string>());
  }
  return out;
}

bool IsCdSlot(const json& slot) {
  if (auto t = slot.find("MediaTypes"); t != slot.end() && t->is_array() && !t->empty()) {
    for (const auto& m : *t) {
      if (m == "CD" || m == "DVD") return true;
    }
    return false;
  }
  // AMI's CD1 lists no MediaTypes: fall back to the name.
  return ToUpper(slot.value("Id", "")).find("CD") != std::string::npos ||
         ToUpper(slot.value("Name", "")).find("CD") != std::string::npos;
}

bool HasMediaType(const json& slot, const char* type) {
  auto t = slot.find("MediaTypes");
  if (t == slot.end() || !t->is_array()) return false;
  return std::any_of(t->begin(), t->end(), [type](const json& m) { return m == type; });
}

bool IsRemovableDiskSlot(const json& slot) {
  if (auto t = slot.find("MediaTypes"); t != slot.end() && t->is_array() && !t->empty()) {
    return HasMediaType(slot, "USBStick") || HasMediaType(slot, "Floppy");
  }
  // Without MediaTypes, the name says it (AMI's HD1, iDRAC's RemovableDisk).
  for (const char* key : {"Id", "Name"}) {
    std::string n = ToUpper(slot.value(key, ""));
    for (const char* word : {"USB", "FLOPPY", "REMOVABLE", "HD"}) {
      if (n.find(word) != std::string::npos) return true;
    }
  }
  return false;
}

// "/redfish/v1/Managers/1/VirtualMedia/2 (CD, DVD)" for the error listing the slots.
std::string DescribeSlot(const std::string& path, const json& slot) {
  std::vector<std::string> types;
  if (auto t = slot.find("MediaTypes"); t != slot.end() && t->is_array()) {
    for (const auto& m : *t) {
      if (m.is_string()) types.push_back(m.get<std::string>());
    }
  }
  return types.empty() ? fmt::format("{} (no MediaTypes)", path)
                       : fmt::format("{} ({})", path, fmt::join(types, ", "));
}

}  // namespace

BmcClient::BmcClient(const std::string& host, Credentials credentials, ClientOptions options,
                     Logger log, ProgressFn progress)
    : rf_(host, std::move(credentials), options.http, log, options.stop),
      options_(std::move(options)),
      log_(std::move(log)),
      progress_(std::move(progress)),
      host_(host) {}

void BmcClient::Progress(const std::string& state) {
  log_->debug("{}: {}", host_, state);
  if (progress_) progress_(state);
}

void BmcClient::Fail(Failure f, const std::string& what, const Reply& r) {
  throw BmcError(f, fmt::format("{}: {}: {}", host_, what, DescribeError(r.status, r.body)));
}

void BmcClient::Sleep() {
  // Nothing notifies the condition variable: only the time or a stop ends the wait.
  std::mutex mu;
  std::condition_variable_any never;
  std::unique_lock lock(mu);
  never.wait_for(lock, options_.stop, std::chrono::duration<double>(options_.poll_interval_s),
                 [] { return false; });
  if (options_.stop.stop_requested()) throw Interrupted();
}

void BmcClient::Discover() {
  if (discovered_) return;
  Progress("connecting");
  const json& root = rf_.Connect();
  profile_ = DetectVendor(root);
  std::string systems = Link(root, "Systems");
  if (systems.empty())
    throw BmcError(Failure::kConnect, host_ + ": the service root has no Systems");
  auto members = Members(rf_.GetJson(systems));
  if (members.empty()) throw BmcError(Failure::kConnect, host_ + ": the BMC lists no system");
  if (members.size() > 1) {
    log_->warn("{}: {} systems; using the first, {}", host_, members.size(), members[0]);
  }
  system_path_ = members[0];
  json system = rf_.GetJson(system_path_);
  system_media_ = Link(system, "VirtualMedia");
  if (auto links = system.find("Links"); links != system.end() && links->is_object()) {
    if (auto by = links->find("ManagedBy"); by != links->end() && by->is_array()) {
      for (const auto& m : *by) {
        if (m.is_object() && m.contains("@odata.id")) manager_paths_.push_back(m["@odata.id"]);
      }
    }
  }
  if (manager_paths_.empty() && !Link(root, "Managers").empty()) {
    manager_paths_ = Members(rf_.GetJson(Link(root, "Managers")));
  }
  discovered_ = true;
  log_->debug("{}: {} system {}", host_, profile_.name, system_path_);
}

BmcClient::Slot BmcClient::ReadSlot(const std::string& path) {
  Reply r = rf_.Get(path);
  if (!r.ok() || !r.body.is_object()) Fail(Failure::kConnect, "GET " + path, r);
  return Slot{path, r.body, r.etag, r.allow};
}

std::vector<std::string> BmcClient::MediaCollections() {
  Discover();
  // The System's collection is the current schema location; the Managers'
  // one is older (iLO, AMI, Supermicro, iDRAC 9) but still the common case.
  std::vector<std::string> collections;
  if (!system_media_.empty()) collections.push_back(system_media_);
  for (const auto& m : manager_paths_) {
    if (auto c = Link(rf_.GetJson(m), "VirtualMedia"); !c.empty()) collections.push_back(c);
  }
  if (collections.empty()) {
    throw BmcError(Failure::kNoVirtualMedia,
                   fmt::format("{}: this {} BMC offers no virtual media (no VirtualMedia under {} "
                               "or its managers); enable it (service, license) or boot another way",
                               host_, profile_.name, system_path_));
  }
  return collections;
}

BmcClient::Slot BmcClient::FindCdSlot() {
  Discover();
  if (!slot_path_.empty()) return ReadSlot(slot_path_);
  auto collections = MediaCollections();
  size_t slots = 0;
  for (const auto& c : collections) {
    Reply r = rf_.Get(c);
    if (!r.ok()) continue;
    for (const auto& m : Members(r.body)) {
      ++slots;
      Slot s = ReadSlot(m);
      if (IsCdSlot(s.body)) {
        slot_path_ = s.path;
        return s;
      }
    }
  }
  throw BmcError(Failure::kNoVirtualMedia,
                 fmt::format("{}: no CD/DVD virtual media slot among {} slot(s) in {}{}", host_,
                             slots, fmt::join(collections, ", "),
                             slots == 0 ? " (remote media may be disabled on the BMC)" : ""));
}

BmcClient::Slot BmcClient::FindDataSlot(bool required) {
  if (!data_slot_path_.empty()) return ReadSlot(data_slot_path_);
  std::string cd = FindCdSlot().path;
  std::vector<std::string> seen;
  std::optional<Slot> other_cd;
  for (const auto& c : MediaCollections()) {
    Reply r = rf_.Get(c);
    if (!r.ok()) continue;
    for (const auto& m : Members(r.body)) {
      Slot s = ReadSlot(m);
      seen.push_back(DescribeSlot(s.path, s.body));
      if (s.path == cd) continue;
      if (IsRemovableDiskSlot(s.body)) {
        data_slot_path_ = s.path;
        return s;
      }
      if (!other_cd && IsCdSlot(s.body)) other_cd = s;
    }
  }
  if (other_cd) {
    data_slot_path_ = other_cd->path;
    return *other_cd;
  }
  if (!required) return Slot{};
  throw BmcError(Failure::kNoVirtualMedia,
                 fmt::format("{}: no second virtual media slot for the data image (no USB stick, "
                             "removable disk or second CD slot); this {} BMC has {} slot(s): {}",
                             host_, profile_.name, seen.size(), fmt::join(seen, ", ")));
}

MediaState BmcClient::ReadMedia(const Slot& slot) {
  MediaState m;
  m.slot = slot.path;
  const json& b = slot.body;
  if (auto i = b.find("Image"); i != b.end() && i->is_string()) m.image = i->get<std::string>();
  if (m.image == "None") m.image.clear();  // AMI's empty value
  m.inserted = b.value("Inserted", false);
  m.connected_via = b.value("ConnectedVia", "");
  if (auto o = b.find("Oem");
      o != b.end() && o->is_object() && o->contains("Ami") && (*o)["Ami"].is_object()) {
    m.redirection = (*o)["Ami"].value("RedirectionStatus", "");
  }
  return m;
}

SystemStatus BmcClient::Status() {
  Discover();
  SystemStatus st;
  json system = rf_.GetJson(system_path_);
  st.vendor = profile_.name;
  st.system = system_path_;
  st.power_state = system.value("PowerState", "");
  if (auto b = system.find("Boot"); b != system.end() && b->is_object()) {
    st.boot_target = b->value("BootSourceOverrideTarget", "");
    st.boot_enabled = b->value("BootSourceOverrideEnabled", "");
  }
  try {
    st.media = ReadMedia(FindCdSlot());
    st.has_media = true;
    Slot data = FindDataSlot(false);
    if (!data.path.empty()) {
      st.has_data_slot = true;
      st.data_media = ReadMedia(data);
    }
  } catch (const BmcError& e) {
    if (e.failure() != Failure::kNoVirtualMedia) throw;
    st.media_problem = e.what();
  }
  return st;
}

Reply BmcClient::WaitTask(Reply r, Failure failure, const std::string& what) {
  if (r.status != 202) return r;
  std::string monitor = r.location;
  if (monitor.empty() && r.body.is_object()) monitor = r.body.value("@odata.id", "");
  if (monitor.empty()) return r;  // accepted, nothing to follow
  Progress("waiting for task " + monitor);
  for (int i = 0; i < options_.task_polls; ++i) {
    Sleep();
    Reply t = rf_.Get(monitor);
    if (t.status == 202) continue;
    if (!t.ok()) Fail(failure, what + " (task " + monitor + ")", t);
    if (!t.body.is_object() || !t.body.contains("TaskState")) return t;
    std::string state = t.body.value("TaskState", "");
    if (state == "Completed") {
      if (t.body.value("TaskStatus", "OK") == "Critical") {
        Fail(failure, what + " (task " + monitor + " failed)", Reply{500, t.body, "", "", ""});
      }
      return t;
    }
    if (state == "Exception" || state == "Killed" || state == "Cancelled") {
      json msgs = {{"@Message.ExtendedInfo", t.body.value("Messages", json::array())}};
      Fail(failure, fmt::format("{} (task {} ended {})", what, monitor, state),
           Reply{500, msgs, "", "", ""});
    }
  }
  throw BmcError(Failure::kTask, fmt::format("{}: {}: task {} did not finish after {} polls", host_,
                                             what, monitor, options_.task_polls));
}

void BmcClient::Boot(const std::string& url, const std::string& data_url) {
  Insert(url, data_url);
  BootOnce(BootTarget::kVirtualCd);
  Reset();
  Progress("booting via cd");
}

void BmcClient::NetBoot() {
  BootOnce(BootTarget::kPxe);
  Reset();
  Progress("booting via pxe");
}

}  // namespace isoboot::bmc
