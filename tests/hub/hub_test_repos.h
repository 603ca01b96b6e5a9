#pragma once
// The fixture of the hub tests: a FakeHub serving test repositories made from ../shared's
// small models (written into a temporary folder with the repository's own writers), and the
// HF_* environment pointing at it and at an empty temporary cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "common/gguf_split_writer.h"
#include "common/temp_dir.h"
#include "hub/fake_hub.h"
#include "torchless/hub/hub_settings.h"
#include "torchless/hub/model_resolver.h"

namespace torchless::test {

namespace fs = std::filesystem;

inline const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
inline const std::string kGgufRepo = "test-org/stories-GGUF";
inline const std::string kSplitRepo = "test-org/stories-split-GGUF";
inline const std::string kSafetensorsRepo = "test-org/tiny-llama";

inline std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline fs::path shared_file(const std::string& relative) {
  const fs::path p = fs::path(TORCHLESS_SOURCE_DIR) / ".." / "shared" / relative;
  if (!fs::exists(p)) ADD_FAILURE() << "missing test data " << p;
  return p;
}

// Every regular file and link under `dir` (a cache that must stay empty lists none).
inline std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_symlink() || it->is_regular_file()) out.push_back(it->path().string());
  }
  return out;
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "home");
    set_env("HF_HUB_CACHE", cache_dir().string());
    set_env("HF_HOME", (dir_.path() / "home").string());
    set_env("HF_ENDPOINT", hub_.endpoint());
    set_env("HF_TOKEN", std::nullopt);
    set_env("HUGGING_FACE_HUB_TOKEN", std::nullopt);
    set_env("HF_HUB_OFFLINE", std::nullopt);
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

  void set_env(const std::string& name, const std::optional<std::string>& value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }

  fs::path cache_dir() const { return dir_.path() / "cache"; }
  fs::path repo_dir(const std::string& repo) const {
    std::string folder = "models--" + repo;
    folder.replace(folder.find('/'), 1, "--");
    return cache_dir() / folder;
  }

  std::string stories() const { return file_bytes(shared_file("models/stories260K.gguf")); }

  // stories260K as F32 (the shared file) and as "Q4_K_M" (the same weights, other bytes).
  void add_gguf_repo() {
    const fs::path q4 = dir_.path() / "q4.gguf";
    rewrite_gguf(shared_file("models/stories260K.gguf"), q4,
                 {{"general.quantized_by", gguf_string("the hub tests")}});
    hub_.add_repo(kGgufRepo, kCommit,
                  {{"README.md", "# stories\n", false},
                   {"stories260K-F32.gguf", stories(), true},
                   {"stories260K-Q4_K_M.gguf", file_bytes(q4), true}});
  }

  void add_split_repo() {
    const auto parts = write_split_gguf(shared_file("models/stories260K.gguf"),
                                        (dir_.path() / "stories260K-Q8_0").string(), 3);
    std::vector<FakeFile> files{{".gitattributes", "*.gguf filter=lfs\n", false}};
    for (const fs::path& p : parts) files.push_back({p.filename().string(), file_bytes(p), true});
    hub_.add_repo(kSplitRepo, kCommit, files);
  }

  // ../shared/golden/llama's model.safetensors in three shards with their index, its config,
  // a tokenizer file, and a file no loader needs.
  std::vector<FakeFile> safetensors_files() const;

  hub::ResolvedModel pull(const std::string& spec) {
    return hub::resolve_hub_model(hub::parse_repo_spec(spec), hub::ResolveMode::Refresh,
                                  hub::hub_settings_from_env());
  }
  hub::ResolvedModel use(const std::string& spec) {
    return hub::resolve_hub_model(hub::parse_repo_spec(spec), hub::ResolveMode::PreferCache,
                                  hub::hub_settings_from_env());
  }
  std::string pull_error(const std::string& spec) {
    try {
      pull(spec);
    } catch (const std::exception& e) {
      return e.what();
    }
    ADD_FAILURE() << "pulled " << spec;
    return "";
  }

  TempDir dir_;
  FakeHub hub_;
  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace torchless::test
