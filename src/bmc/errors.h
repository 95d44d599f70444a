#pragma once
// BMC failures: a class (which step failed, mapped to the CLI's exit codes)
// plus one readable line, and pure helpers that read Redfish error bodies
// (`error.@Message.ExtendedInfo`). Pure and thread-safe.

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace isoboot::bmc {

// Values are the CLI's exit codes (docs/bmc.md).
enum class Failure {
  kInternal = 1,
  kUsage = 2,
  kConnect = 3,         // network, TLS, not a Redfish service
  kAuth = 4,            // login refused, session limit
  kNoVirtualMedia = 5,  // no virtual media / no CD slot / cannot insert at all
  kInsert = 6,          // the BMC refused the insert
  kNotMounted = 7,      // accepted, but Inserted never became true
  kBootOverride = 8,    // one-time boot could not be set
  kPower = 9,           // reset refused, or the power state never changed
  kTask = 10,           // a task monitor failed or did not finish
  kConsole = 11,        // ipmitool missing or SOL failed
  kSomeHostsFailed = 12,
};

std::string_view FailureName(Failure f);

class BmcError : public std::runtime_error {
 public:
  BmcError(Failure failure, const std::string& message)
      : std::runtime_error(message), failure_(failure) {}
  Failure failure() const { return failure_; }

 private:
  Failure failure_;
};

// A step cut short by a stop request (Ctrl-C, SIGTERM): kInternal,
// "interrupted".
BmcError Interrupted();

// One line from an error body: the ExtendedInfo messages (or their
// MessageId when a BMC sends no Message, as iLO 6 does), else error.message,
// else "HTTP <status>".
std::string DescribeError(long status, const nlohmann::json& body);

// True when an ExtendedInfo entry's MessageId ends in `suffix` (the registry
// version in front varies: Base.1.0., Base.1.4.0., Base.1.12.).
bool HasMessageId(const nlohmann::json& body, std::string_view suffix);

// True when the error names `property`: in RelatedProperties ("#/X", "/X"),
// MessageArgs, or the message text (GeneralError variants only say it there).
bool MentionsProperty(const nlohmann::json& body, std::string_view property);

}  // namespace isoboot::bmc
