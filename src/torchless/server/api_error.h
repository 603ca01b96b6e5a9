#pragma once
// An error as the OpenAI API reports it: an HTTP status and the body
// {"error": {"message", "type", "param", "code"}}. Every failure a request can cause becomes one.
#include <string>

#include <nlohmann/json.hpp>

namespace torchless::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, "" when none
  std::string code;   // a machine-readable code ("invalid_api_key"), "" when none

  nlohmann::json body() const {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
              {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)}}}};
  }
};

inline ApiError invalid_request(std::string message, std::string param = {},
                                std::string code = {}) {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

}  // namespace torchless::server
