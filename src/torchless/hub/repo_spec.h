#pragma once
// A model named by Hugging Face hub repository, as users write it: "org/name" or
// "org/name:QUANT" (the quantisation picks one GGUF file of a repository of several).
#include <string>

namespace torchless::hub {

struct RepoSpec {
  std::string repo;      // "org/name"
  std::string quant;     // "" or e.g. "Q4_K_M" (matched case-insensitively)
  std::string revision;  // a branch, tag or commit hash; "main" by default

  std::string str() const { return quant.empty() ? repo : repo + ":" + quant; }
};

// Throws Error for a name that is not ORG/NAME[:QUANT] with the hub's characters
// (letters, digits, '-', '_', '.'; no "--" or ".." that would escape the cache layout).
RepoSpec parse_repo_spec(const std::string& text, const std::string& revision = "main");

}  // namespace torchless::hub
