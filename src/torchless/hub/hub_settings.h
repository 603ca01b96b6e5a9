#pragma once
// Where the hub is and how to reach it, from the environment variables every Hugging Face tool
// reads (huggingface_hub, transformers, llama.cpp), so one download serves them all:
//   HF_ENDPOINT      the hub or a mirror (default https://huggingface.co)
//   HF_TOKEN         an access token for gated and private repositories (else HF_HOME/token)
//   HF_HUB_CACHE     the cache folder (else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
//                    else ~/.cache/huggingface/hub)
//   HF_HUB_OFFLINE   1: never touch the network, use the cache only
#include <filesystem>
#include <string>

namespace torchless::hub {

struct HubSettings {
  std::string endpoint = "https://huggingface.co";
  std::string token;
  std::filesystem::path cache_dir;
  bool offline = false;
};

// Throws Error when no cache folder can be derived (no HOME and no HF_* variable).
HubSettings hub_settings_from_env();

}  // namespace torchless::hub
