#pragma once
// SHA-256 of a file (OpenSSL's libcrypto), to check a download against the hash the hub
// reports for LFS files.
#include <filesystem>
#include <string>

namespace torchless::hub {

std::string sha256_file_hex(const std::filesystem::path& path);  // lower-case hex; throws Error

}  // namespace torchless::hub
