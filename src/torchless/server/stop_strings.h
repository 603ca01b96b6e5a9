#pragma once
// Stop strings over streamed text: text goes in as it is decoded, and what may be shown comes
// out. Text that could be the start of a stop string is held back until the next piece says
// whether it is; once a stop string appears, the output ends just before it. Input that is
// complete UTF-8 gives complete UTF-8 out (a held-back part starts where a stop string starts).
#include <string>
#include <string_view>
#include <vector>

namespace torchless::server {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends `text` and returns what can be emitted now.
  std::string feed(std::string_view text);
  // At the end of a generation without a stop: what was held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace torchless::server
