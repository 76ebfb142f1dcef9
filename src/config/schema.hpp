// The spelling of every config enum value (shared by parsing and to_string) and the range of every number.
#pragma once

#include <chrono>
#include <span>
#include <string_view>

#include "pgweir/config/config.hpp"

namespace pgweir::config::detail {

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

inline constexpr EnumName<PoolMode> k_pool_modes[] = {
    {"session", PoolMode::session}, {"transaction", PoolMode::transaction}, {"statement", PoolMode::statement}};
inline constexpr EnumName<SessionState> k_session_states[] = {
    {"pin", SessionState::pin}, {"error", SessionState::error}, {"allow", SessionState::allow}};
inline constexpr EnumName<TlsMode> k_tls_modes[] = {
    {"disable", TlsMode::disable}, {"allow", TlsMode::allow},         {"prefer", TlsMode::prefer},
    {"require", TlsMode::require}, {"verify-ca", TlsMode::verify_ca}, {"verify-full", TlsMode::verify_full}};
inline constexpr EnumName<TlsVersion> k_tls_versions[] = {{"TLSv1.2", TlsVersion::tls1_2},
                                                          {"TLSv1.3", TlsVersion::tls1_3}};
inline constexpr EnumName<AuthMethod> k_auth_methods[] = {{"trust", AuthMethod::trust},
                                                          {"md5", AuthMethod::md5},
                                                          {"scram-sha-256", AuthMethod::scram_sha_256},
                                                          {"cert", AuthMethod::cert},
                                                          {"hba", AuthMethod::hba}};
inline constexpr EnumName<LogLevel> k_log_levels[] = {
    {"error", LogLevel::error}, {"warn", LogLevel::warn}, {"info", LogLevel::info}, {"debug", LogLevel::debug}};
inline constexpr EnumName<IoBackend> k_io_backends[] = {{"epoll", IoBackend::epoll}, {"io_uring", IoBackend::io_uring}};
inline constexpr EnumName<LogFormat> k_log_formats[] = {{"text", LogFormat::text}, {"json", LogFormat::json}};

// Ranges: wide enough for any real deployment, narrow enough to catch a typo or a unit mix-up.
inline constexpr int k_max_workers = 1024;
inline constexpr int k_max_client_connections = 1'000'000;
inline constexpr int k_max_pool_size = 10'000;
inline constexpr int k_max_connection_cap = 1'000'000;  // max_db_connections, max_user_connections
inline constexpr int k_max_prepared_statements = 100'000;
// Ten years: far beyond any useful timeout, and far from overflowing `steady_clock::now() + d`.
inline constexpr Duration k_max_duration = std::chrono::hours(24 * 365 * 10);

template <class E>
std::string_view name_of(E value, std::span<const EnumName<E>> names) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

}  // namespace pgweir::config::detail
