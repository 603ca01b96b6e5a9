#include "torchless/hub/hub_settings.h"

#include <cstdlib>
#include <fstream>

#include "torchless/core/error.h"

namespace torchless::hub {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

bool truthy(const std::string& value) {
  return value == "1" || value == "true" || value == "TRUE" || value == "yes" || value == "ON" ||
         value == "on" || value == "True" || value == "YES";
}

fs::path hf_home() {
  if (const std::string home = env("HF_HOME"); !home.empty()) return home;
  if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty())
    return fs::path(xdg) / "huggingface";
  const std::string user_home = env("HOME");
  if (user_home.empty()) {
    fail("cannot find the Hugging Face cache: set HF_HOME or HF_HUB_CACHE (HOME is not set)");
  }
  return fs::path(user_home) / ".cache" / "huggingface";
}

// huggingface-cli login stores the token in HF_HOME/token.
std::string stored_token(const fs::path& home) {
  std::ifstream in(home / "token");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

}  // namespace

HubSettings hub_settings_from_env() {
  HubSettings s;
  if (std::string endpoint = env("HF_ENDPOINT"); !endpoint.empty()) {
    while (endpoint.back() == '/') endpoint.pop_back();
    s.endpoint = endpoint;
  }
  s.offline = truthy(env("HF_HUB_OFFLINE"));
  const std::string cache = env("HF_HUB_CACHE");
  s.cache_dir = cache.empty() ? hf_home() / "hub" : fs::path(cache);
  s.token = env("HF_TOKEN");
  if (s.token.empty()) s.token = env("HUGGING_FACE_HUB_TOKEN");
  if (s.token.empty() && (!env("HF_HOME").empty() || !env("HOME").empty())) {
    s.token = stored_token(hf_home());
  }
  return s;
}

}  // namespace torchless::hub
