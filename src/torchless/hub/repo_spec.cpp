#include "torchless/hub/repo_spec.h"

#include <regex>

#include "torchless/core/error.h"

namespace torchless::hub {

RepoSpec parse_repo_spec(const std::string& text, const std::string& revision) {
  static const std::regex repo_pattern(
      R"(^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$)");
  static const std::regex quant_pattern(R"(^[A-Za-z0-9_.-]+$)");
  static const std::regex revision_pattern(R"(^[A-Za-z0-9][A-Za-z0-9._/-]*$)");
  RepoSpec spec;
  const size_t colon = text.find(':');
  spec.repo = text.substr(0, colon);
  if (colon != std::string::npos) spec.quant = text.substr(colon + 1);
  spec.revision = revision;
  const bool bad_repo = !std::regex_match(spec.repo, repo_pattern) ||
                        spec.repo.find("--") != std::string::npos ||
                        spec.repo.find("..") != std::string::npos;
  if (bad_repo) {
    fail(
        "'{}' is not a Hugging Face repository: expected ORG/NAME or ORG/NAME:QUANT "
        "(e.g. ggml-org/gemma-3-1b-it-GGUF:Q4_K_M)",
        text);
  }
  if (colon != std::string::npos && !std::regex_match(spec.quant, quant_pattern)) {
    fail("'{}': the quantisation after ':' must be a name such as Q4_K_M", text);
  }
  if (!std::regex_match(revision, revision_pattern) || revision.find("..") != std::string::npos) {
    fail("--revision '{}' is not a branch, tag or commit name", revision);
  }
  return spec;
}

}  // namespace torchless::hub
