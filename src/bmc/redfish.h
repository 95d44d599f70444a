#pragma once
// A logged-in Redfish connection: session login (X-Auth-Token, Basic auth as
// the fallback), requests with JSON bodies, and a logout that always runs
// (the destructor DELETEs the session, also when an error unwinds). The
// password is kept only in memory: never in a URL, never logged. A stop
// request makes every request but the logout fail with Interrupted(). One
// thread.

#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "bmc/http_client.h"

namespace isoboot::bmc {

struct Credentials {
  std::string user;
  std::string password;
};

struct Reply {
  long status = 0;
  nlohmann::json body;   // null when empty or not JSON
  std::string etag;      // ETag header, else the body's @odata.etag
  std::string location;  // Location header
  std::string allow;     // Allow header
  bool ok() const { return status >= 200 && status < 300; }
};

class Redfish {
 public:
  // `host` is "name", "name:port" or a full "https://name:port" base.
  Redfish(const std::string& host, Credentials credentials, HttpOptions options, Logger log,
          std::stop_token stop = {});
  ~Redfish();  // logs out
  Redfish(const Redfish&) = delete;
  Redfish& operator=(const Redfish&) = delete;

  // GET /redfish/v1 (no auth), then log in. Throws BmcError.
  const nlohmann::json& Connect();
  void Logout();

  Reply Get(const std::string& path);
  Reply Post(const std::string& path, const nlohmann::json& body);
  Reply Patch(const std::string& path, const nlohmann::json& body, const std::string& if_match);
  Reply Delete(const std::string& path);

  // GET that must succeed: throws BmcError(on_error) with the BMC's message.
  nlohmann::json GetJson(const std::string& path);

  const std::string& base_url() const { return base_; }
  const nlohmann::json& root() const { return root_; }
  bool using_session() const { return !token_.empty(); }

 private:
  // `cancellable`: false only for the logout, which must run after a stop.
  Reply Send(const std::string& method, const std::string& path, const nlohmann::json* body,
             const std::string& if_match, bool retry_login, bool cancellable = true);
  void Login();

  std::string base_;
  Credentials credentials_;
  HttpClient http_;
  Logger log_;
  std::stop_token stop_;
  nlohmann::json root_;
  std::string token_;
  std::string last_token_;  // X-Auth-Token of the last reply (login reads it)
  std::string session_path_;
  bool basic_ = false;
};

}  // namespace isoboot::bmc
