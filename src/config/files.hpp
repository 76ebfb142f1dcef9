// File access during config loading: the config itself, secret files, and readability checks.
#pragma once

#include <string>
#include <string_view>

#include "pgweir/core/result.hpp"

namespace pgweir::config::detail {

// The whole file. Errors name the file and the OS reason: "cannot read `/x`: No such file or directory".
Expected<std::string> read_text_file(const std::string& path);

// A password file: its contents with one trailing "\n" or "\r\n" cut.
Expected<std::string> read_secret_file(const std::string& path);

// Ok when `path` is a regular file this process can open for reading.
Expected<void> check_readable_file(const std::string& path);

// A relative `path` is taken relative to `config_dir` (the config file's directory), so the daemon's working
// directory does not matter. Empty paths and an empty `config_dir` leave `path` as it is.
std::string resolve_path(std::string_view config_dir, std::string_view path);

}  // namespace pgweir::config::detail
