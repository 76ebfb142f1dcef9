// Helpers shared by the config tests: loading from a string with a fixed environment, temp files.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "pgweir/config/config.hpp"

namespace pgweir::config::test {

inline EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    if (auto it = vars.find(std::string(name)); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

inline const EnvLookup k_no_env = env_of({});

// Client TLS is on by default and then needs a certificate; most tests are not about that, so they turn it off
// with lines appended at the end, where they cannot shift the line numbers a test checks.
inline LoadResult load(std::string toml, const EnvLookup& env = k_no_env) {
  if (toml.find("[tls]") == std::string::npos) toml += "\n[tls]\nmode = \"disable\"\n";
  return load_string(toml, "test.toml", env);
}

inline std::string all_errors(const LoadResult& result) {
  std::string text;
  for (const auto& e : result.errors) text += e.to_string() + "\n";
  return text;
}

// The one error a config must produce.
inline Diagnostic only_error(const LoadResult& result) {
  INFO(all_errors(result));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.config == nullptr);
  return result.errors.front();
}

inline const Config& ok(const LoadResult& result) {
  INFO(all_errors(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config != nullptr);
  return *result.config;
}

// A fresh directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pgweir-config-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string write(const std::string& name, const std::string& contents) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace pgweir::config::test

namespace pgweir::config::test {

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace pgweir::config::test
