#pragma once
// The boot flows over Redfish: find the system and its CD slot (and, for a
// data image, a second slot: a removable disk / USB stick, else another
// CD), eject / insert / verify the mount, one-time boot override (to the virtual CD or
// to the network), reset and watch the power state. Every step is driven by
// links, targets and allowable values read from the BMC; vendor differences
// come from VendorProfile only. Every loop is bounded; failures throw
// BmcError with a Failure class; the session is deleted on every path
// (Redfish's destructor), also after a stop request (ClientOptions::stop).
// One thread per
// BmcClient; run several clients in parallel for several BMCs.

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "bmc/errors.h"
#include "bmc/redfish.h"
#include "bmc/vendor.h"

namespace isoboot::bmc {

struct ClientOptions {
  HttpOptions http;
  double poll_interval_s = 3;
  int verify_polls = 20;  // mount check: 20 x 3 s
  int eject_polls = 10;
  int power_polls = 40;   // power state: 40 x 3 s
  int task_polls = 200;   // task monitors: 200 x 3 s
  int post_retries = 10;  // iLO "during POST" refusals of the boot PATCH
  std::string boot_mode;  // "", "UEFI" or "Legacy"; "" keeps the current one
  // Once stop is requested every step throws Interrupted() (the session is
  // still deleted); waits between polls end at once.
  std::stop_token stop;
};

struct MediaState {
  std::string slot;  // the slot's URI
  std::string image;
  bool inserted = false;
  std::string connected_via;
  std::string redirection;  // AMI Oem.Ami.RedirectionStatus
};

struct SystemStatus {
  std::string vendor;
  std::string system;
  std::string power_state;
  std::string boot_target;
  std::string boot_enabled;
  bool has_media = false;
  std::string media_problem;  // why has_media is false
  MediaState media;
  bool has_data_slot = false;  // a second slot, as --data would use
  MediaState data_media;
};

// What a one-time boot starts from.
enum class BootTarget {
  kVirtualCd,  // the image mounted by Insert
  kPxe,        // the network (Redfish override target Pxe)
};

// Called with a short state ("inserting", "waiting for mount", ...).
using ProgressFn = std::function<void(const std::string& state)>;

class BmcClient {
 public:
  BmcClient(const std::string& host, Credentials credentials, ClientOptions options, Logger log,
            ProgressFn progress = {});

  SystemStatus Status();
  // Ejects the CD, and whatever the data slot holds.
  void Eject();
  // Ejects whatever else is inserted, inserts `url` into the CD slot, and
  // waits for the mount. With `data_url`, also the data image into the data
  // slot (a BMC without a second slot fails with kNoVirtualMedia before
  // anything is inserted).
  void Insert(const std::string& url, const std::string& data_url = "");
  void BootOnce(BootTarget target);
  // Resets with a type the system allows and waits until the host is seen
  // restarted (down and up again, or a new boot in BootProgress or iLO's
  // PostState) and On; a host that shows no restart is powered off and on,
  // with the last BootOnce set again.
  void Reset();
  // Insert + BootOnce(kVirtualCd) + Reset.
  void Boot(const std::string& url, const std::string& data_url = "");
  // BootOnce(kPxe) + Reset; no virtual media is touched.
  void NetBoot();

  const VendorProfile& profile() const { return profile_; }
  // The data slot's URI, once Insert with a data image (or Eject) found it.
  const std::string& data_slot() const { return data_slot_path_; }

 private:
  struct Slot {
    std::string path;
    nlohmann::json body;
    std::string etag;
    std::string allow;
  };

  void Discover();
  Slot FindCdSlot();
  // The slot for a data image beside the CD: the first whose MediaTypes
  // name USBStick or Floppy (a removable disk), else another CD slot; with
  // `required`, throws kNoVirtualMedia naming the slots there are when there
  // is none, else returns a Slot with an empty path.
  Slot FindDataSlot(bool required);
  std::vector<std::string> MediaCollections();
  // Ejects what `s` holds, inserts `url` and waits for the mount.
  void InsertInto(Slot s, const std::string& url, const std::string& what);
  Slot ReadSlot(const std::string& path);
  static MediaState ReadMedia(const Slot& slot);
  void EjectSlot(const Slot& slot);
  void InsertSlot(const Slot& slot, const std::string& url);
  void VerifyMounted(const std::string& path, const std::string& url, const std::string& what);
  bool BootViaDellScp();
  bool BootViaHpeFlag();
  void BootStandard(BootTarget via, bool other_route_done);
  void WatchPower(const std::string& want);
  // After a reset of a host that was On: true once it is seen restarted
  // and On, false if nothing showed a restart; throws if it went down and
  // did not come back.
  bool WatchRestart(const std::string& boot_stamp_before);
  static std::string BootStamp(const nlohmann::json& system);
  // Follows a 202 task monitor to its end; returns the final reply. Throws
  // BmcError(failure) when the task fails or does not finish in time.
  Reply WaitTask(Reply reply, Failure failure, const std::string& what);
  void Sleep();
  void Progress(const std::string& state);
  [[noreturn]] void Fail(Failure f, const std::string& what, const Reply& r);

  Redfish rf_;
  ClientOptions options_;
  Logger log_;
  ProgressFn progress_;
  std::string host_;
  VendorProfile profile_;
  bool discovered_ = false;
  std::string system_path_;
  std::vector<std::string> manager_paths_;
  std::string system_media_;               // the System's VirtualMedia link, if any
  std::string slot_path_;                  // the CD slot, once found
  std::string data_slot_path_;             // the data slot, once found
  std::optional<BootTarget> boot_target_;  // the last BootOnce's
};

}  // namespace isoboot::bmc
