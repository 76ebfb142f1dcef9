// Loads pgweir.toml: walks SPEC §2's key schema with the Reader, then checks what spans several keys
// (TLS and auth requirements, database passwords) and the files the config points at.
#include <algorithm>
#include <climits>
#include <exception>
#include <filesystem>

#include "files.hpp"
#include "pgweir/config/config.hpp"
#include "pgweir/pq/dsn.hpp"
#include "reader.hpp"
#include "schema.hpp"

namespace pgweir::config {
namespace detail {
namespace {

// sockaddr_un::sun_path is 108 bytes on Linux, including the terminating NUL.
constexpr std::size_t k_max_unix_socket_path = 107;
constexpr std::string_view k_unix_socket_name = "/.s.PGSQL.65535";  // the longest name a port can give
// Client connections to these names reach the admin console, so a database of that name could never be used.
constexpr std::string_view k_console_databases[] = {"pgweir", "pgbouncer"};

std::optional<std::string> check_listen(std::string_view text) {
  if (parse_listen_address(text)) return std::nullopt;
  return "\"" + std::string(text) +
         "\" is not a listen address: write host:port, or [IPv6-address]:port, with a port from 1 to 65535";
}

class Loader {
 public:
  Loader(const std::string& path, const EnvLookup& env)
      : path_(path), config_dir_(std::filesystem::path(path).parent_path().string()), reader_(path, env) {
    config_.path = path;
  }

  LoadResult load(std::string_view text) {
    toml::table root;
    try {
      root = toml::parse(text, std::string_view(path_));
    } catch (const toml::parse_error& e) {
      reader_.error(position_of(e.source()), "TOML syntax error: " + std::string(e.description()));
      return finish();
    }
    read_root(root);
    check_server();
    check_tls();
    check_auth();
    check_pool_sizes();
    return finish();
  }

 private:
  // Field readers that store into a plain member or into a PoolOverrides optional alike.
  template <class Target>
  FieldReader string_into(Target& target) {
    return [this, &target](const toml::node& v, const std::string& p) {
      if (auto s = reader_.string(v, p)) target = std::move(*s);
    };
  }
  FieldReader path_into(std::string& target) {
    return [this, &target](const toml::node& v, const std::string& p) {
      if (auto s = reader_.string(v, p)) target = resolve_path(config_dir_, *s);
    };
  }
  template <class Target>
  FieldReader int_into(Target& target, int min, int max) {
    return [this, &target, min, max](const toml::node& v, const std::string& p) {
      if (auto n = reader_.integer(v, p, min, max)) target = *n;
    };
  }
  template <class Target>
  FieldReader duration_into(Target& target) {
    return [this, &target](const toml::node& v, const std::string& p) {
      if (auto d = reader_.duration(v, p)) target = *d;
    };
  }
  template <class Target, class E>
  FieldReader choice_into(Target& target, std::span<const EnumName<E>> names) {
    return [this, &target, names](const toml::node& v, const std::string& p) {
      if (auto e = reader_.choice(v, p, names)) target = *e;
    };
  }
  FieldReader strings_into(std::vector<std::string>& target, StringCheck check = {}) {
    return [this, &target, check](const toml::node& v, const std::string& p) {
      if (auto list = reader_.strings(v, p, check)) target = std::move(*list);
    };
  }
  using TableReader = void (Loader::*)(const toml::table&, const std::string&);
  FieldReader table_into(TableReader read) {
    return [this, read](const toml::node& v, const std::string& p) {
      if (const auto* t = reader_.table(v, p)) (this->*read)(*t, p);
    };
  }

  void read_root(const toml::table& root) {
    const Field fields[] = {
        {"server", table_into(&Loader::read_server)}, {"tls", table_into(&Loader::read_tls)},
        {"auth", table_into(&Loader::read_auth)},     {"admin", table_into(&Loader::read_admin)},
        {"pool", table_into(&Loader::read_pool)},     {"databases", table_into(&Loader::read_databases)},
        {"users", table_into(&Loader::read_users)},   {"metrics", table_into(&Loader::read_metrics)},
        {"log", table_into(&Loader::read_log)},
    };
    reader_.read_fields(root, "", fields);
  }

  void read_server(const toml::table& table, const std::string& path) {
    auto& s = config_.server;
    const Field fields[] = {
        {"listen", strings_into(s.listen, check_listen)},
        {"unix_socket_dir", path_into(s.unix_socket_dir)},
        {"workers", int_into(s.workers, 0, k_max_workers)},
        {"worker_fill", int_into(s.worker_fill, 0, k_max_client_connections)},
        {"io", choice_into<IoBackend, IoBackend>(s.io, k_io_backends)},
        {"max_client_connections", int_into(s.max_client_connections, 1, k_max_client_connections)},
        {"client_login_timeout", duration_into(s.client_login_timeout)},
        {"client_idle_timeout", duration_into(s.client_idle_timeout)},
        {"client_park_after", duration_into(s.client_park_after)},
        {"shutdown_timeout", duration_into(s.shutdown_timeout)},
    };
    reader_.read_fields(table, path, fields);
  }

  void read_tls(const toml::table& table, const std::string& path) {
    auto& t = config_.tls;
    const Field fields[] = {
        {"mode", choice_into<TlsMode, TlsMode>(t.mode, k_tls_modes)},
        {"cert_file", path_into(t.cert_file)},
        {"key_file", path_into(t.key_file)},
        {"ca_file", path_into(t.ca_file)},
        {"min_protocol", choice_into<TlsVersion, TlsVersion>(t.min_protocol, k_tls_versions)},
        {"ciphers", string_into(t.ciphers)},
    };
    reader_.read_fields(table, path, fields);
  }

  void read_auth(const toml::table& table, const std::string& path) {
    auto& a = config_.auth;
    const Field fields[] = {
        {"method", choice_into<AuthMethod, AuthMethod>(a.method, k_auth_methods)},
        {"users_file", path_into(a.users_file)},
        {"hba_file", path_into(a.hba_file)},
        {"query", string_into(a.query)},
        {"query_user", string_into(a.query_user)},
        {"query_database", string_into(a.query_database)},
    };
    reader_.read_fields(table, path, fields);
  }

  void read_admin(const toml::table& table, const std::string& path) {
    const Field fields[] = {
        {"users", strings_into(config_.admin.users)},
        {"stats_users", strings_into(config_.admin.stats_users)},
    };
    reader_.read_fields(table, path, fields);
  }

  void read_metrics(const toml::table& table, const std::string& path) {
    const Field fields[] = {
        {"listen",
         [this](const toml::node& v, const std::string& p) {
           auto text = reader_.string(v, p);
           if (!text) return;
           if (auto problem = text->empty() ? std::nullopt : check_listen(*text)) {
             reader_.error(position_of(v.source()), "`" + p + "`: " + *problem + " (\"\" turns metrics off)");
             return;
           }
           config_.metrics.listen = std::move(*text);
         }},
    };
    reader_.read_fields(table, path, fields);
  }

  void read_log(const toml::table& table, const std::string& path) {
    const Field fields[] = {
        {"level", choice_into<LogLevel, LogLevel>(config_.log.level, k_log_levels)},
        {"format", choice_into<LogFormat, LogFormat>(config_.log.format, k_log_formats)},
    };
    reader_.read_fields(table, path, fields);
  }

  // The [pool] keys, shared by [pool], [databases.NAME] and [users.NAME].
  std::vector<Field> pool_fields(PoolOverrides& o) {
    return {
        {"mode", choice_into<std::optional<PoolMode>, PoolMode>(o.mode, k_pool_modes)},
        {"size", int_into(o.size, 1, k_max_pool_size)},
        {"max_overflow", int_into(o.max_overflow, 0, k_max_pool_size)},
        {"min_idle", int_into(o.min_idle, 0, k_max_pool_size)},
        {"timeout", duration_into(o.timeout)},
        {"connect_timeout", duration_into(o.connect_timeout)},
        {"idle_timeout", duration_into(o.idle_timeout)},
        {"max_lifetime", duration_into(o.max_lifetime)},
        {"pre_ping", duration_into(o.pre_ping)},
        {"reset_query", string_into(o.reset_query)},
        {"max_db_connections", int_into(o.max_db_connections, 0, k_max_connection_cap)},
        {"max_user_connections", int_into(o.max_user_connections, 0, k_max_connection_cap)},
        {"idle_transaction_timeout", duration_into(o.idle_transaction_timeout)},
        {"query_timeout", duration_into(o.query_timeout)},
        {"max_prepared_statements", int_into(o.max_prepared_statements, 0, k_max_prepared_statements)},
        {"session_state", choice_into<std::optional<SessionState>, SessionState>(o.session_state, k_session_states)},
    };
  }

  void read_pool(const toml::table& table, const std::string& path) {
    PoolOverrides overrides;
    reader_.read_fields(table, path, pool_fields(overrides));
    overrides.apply_to(config_.pool);
  }

  // Runs `read` on each NAME of a [databases.NAME] / [users.NAME] family after checking the name.
  template <class ReadEntry>
  void read_named_tables(const toml::table& table, const std::string& path, std::string_view what, ReadEntry read) {
    for (const auto& [key, value] : table) {
      const std::string entry_path = key_path(path, key.str());
      const Position key_position = position_of(key.source());
      const Position header = position_of(value.source());
      reader_.remember(entry_path, header.line > 0 ? header : key_position);
      if (key.str().empty()) {
        reader_.error(key_position, "`" + entry_path + "`: a " + std::string(what) + " name must not be empty");
        continue;
      }
      if (const auto* entry = reader_.table(value, entry_path)) read(key.str(), *entry, entry_path, key_position);
    }
  }

  void read_databases(const toml::table& table, const std::string& path) {
    read_named_tables(table, path, "database",
                      [this](std::string_view name, const toml::table& t, const std::string& p, Position at) {
                        if (std::find(std::begin(k_console_databases), std::end(k_console_databases), name) !=
                            std::end(k_console_databases)) {
                          reader_.error(at, "`" + p + "`: database name \"" + std::string(name) +
                                                "\" is reserved for the admin console");
                          return;
                        }
                        read_database(name, t, p);
                      });
  }

  void read_users(const toml::table& table, const std::string& path) {
    read_named_tables(table, path, "user",
                      [this](std::string_view name, const toml::table& t, const std::string& p, Position) {
                        UserConfig user;
                        user.name = std::string(name);
                        reader_.read_fields(t, p, pool_fields(user.overrides));
                        config_.users.insert_or_assign(user.name, std::move(user));
                      });
  }

  void read_database(std::string_view name, const toml::table& table, const std::string& path) {
    DatabaseConfig db;
    db.name = std::string(name);
    bool has_dsn = false;
    bool has_password = false;
    bool has_password_file = false;
    std::optional<std::string> dsn, password, password_file;
    auto fields = pool_fields(db.overrides);
    fields.push_back({"dsn", [&](const toml::node& v, const std::string& p) {
                        has_dsn = true;
                        dsn = reader_.string(v, p);
                      }});
    fields.push_back({"password", [&](const toml::node& v, const std::string& p) {
                        has_password = true;
                        password = reader_.string(v, p);
                      }});
    fields.push_back({"password_file", [&](const toml::node& v, const std::string& p) {
                        has_password_file = true;
                        if (auto file = reader_.string(v, p)) password_file = resolve_path(config_dir_, *file);
                      }});
    reader_.read_fields(table, path, fields);

    const std::string dsn_path = path + ".dsn";
    const std::string password_path = path + ".password";
    const std::string password_file_path = path + ".password_file";
    if (!has_dsn) {
      reader_.error(reader_.where({path}), "database `" + db.name +
                                               "` has no `dsn`: every [databases.NAME] table needs one (the "
                                               "server it forwards to)");
    } else if (dsn && dsn->empty()) {
      reader_.error(reader_.where({dsn_path}), "`" + dsn_path + "` is empty");
    } else if (dsn) {
      auto target = pq::parse_dsn(*dsn);
      if (!target) {
        reader_.error(reader_.where({dsn_path}), "`" + dsn_path + "`: " + target.error().message);
      } else {
        db.dsn = std::move(*dsn);
        db.target = std::move(target).value();
        if (db.name == "*" && !db.target.dbname.empty()) {
          reader_.error(reader_.where({dsn_path}),
                        "`" + dsn_path +
                            "` must not name a dbname: the wildcard database forwards each client's "
                            "database name as it is");
        }
      }
    }

    if (has_password && has_password_file) {
      reader_.error(reader_.where({password_file_path}),
                    "`" + password_path + "` and `" + password_file_path + "` are both set; keep one");
    } else if (password && password->empty()) {
      // An empty password can never log in; leaving the key out (client credentials) is what was meant.
      reader_.error(reader_.where({password_path}), "`" + password_path + "` is empty; leave it out instead");
    } else if (password) {
      db.password = std::move(password);
    } else if (password_file) {
      auto secret = read_secret_file(*password_file);
      if (!secret) {
        reader_.error(reader_.where({password_file_path}), "`" + password_file_path + "`: " + secret.error().message);
      } else if (secret->empty()) {
        reader_.error(reader_.where({password_file_path}),
                      "`" + password_file_path + "`: `" + *password_file + "` is empty");
      } else {
        db.password = std::move(secret).value();
      }
    }
    if (db.password && !db.target.password.empty()) {
      reader_.error(reader_.where({has_password ? password_path : password_file_path}),
                    "`" + dsn_path + "` already contains a password; remove it there or drop `" +
                        (has_password ? password_path : password_file_path) + "`");
    }
    config_.databases.insert_or_assign(db.name, std::move(db));
  }

  void check_readable(const std::string& file, const std::string& key) {
    if (file.empty()) return;
    if (auto ok = check_readable_file(file); !ok)
      reader_.error(reader_.where({key}), "`" + key + "`: " + ok.error().message);
  }

  void check_server() {
    const auto& s = config_.server;
    if (s.listen.empty()) {
      reader_.error(reader_.where({"server.listen"}),
                    "`server.listen` must name at least one address (unix_socket_dir takes its port from the first)");
    }
    if (s.unix_socket_dir.size() + k_unix_socket_name.size() > k_max_unix_socket_path) {
      reader_.error(reader_.where({"server.unix_socket_dir"}),
                    "`server.unix_socket_dir` is too long for a unix socket path (at most " +
                        std::to_string(k_max_unix_socket_path - k_unix_socket_name.size()) + " characters)");
    }
  }

  void check_tls() {
    const auto& tls = config_.tls;
    // A mode that failed to parse says nothing about which files are needed.
    if (tls.mode == TlsMode::disable || reader_.failed("tls.mode")) return;  // disabled: the files are not used
    const std::string mode = "\"" + std::string(to_string(tls.mode)) + "\"";
    for (const auto& [file, key] :
         {std::pair{&tls.cert_file, "tls.cert_file"}, std::pair{&tls.key_file, "tls.key_file"}}) {
      if (reader_.failed(key)) continue;  // already reported, e.g. an unset ${VAR}
      if (file->empty()) {
        reader_.error(reader_.where({key, "tls.mode", "tls"}),
                      "`" + std::string(key) + "` is required when `tls.mode` is " + mode +
                          " (set tls.mode = \"disable\" to turn client TLS off)");
      } else {
        check_readable(*file, key);
      }
    }
    const bool verifies = tls.mode == TlsMode::verify_ca || tls.mode == TlsMode::verify_full;
    if (verifies && tls.ca_file.empty() && !reader_.failed("tls.ca_file")) {
      reader_.error(reader_.where({"tls.ca_file", "tls.mode", "tls"}),
                    "`tls.ca_file` is required when `tls.mode` is " + mode + " (it verifies client certificates)");
    }
    check_readable(tls.ca_file, "tls.ca_file");
  }

  void check_auth() {
    const auto& auth = config_.auth;
    check_readable(auth.users_file, "auth.users_file");
    check_readable(auth.hba_file, "auth.hba_file");
    if (!auth.query.empty() && auth.query_user.empty() && !reader_.failed("auth.query_user")) {
      reader_.error(reader_.where({"auth.query_user", "auth.query"}),
                    "`auth.query_user` is required when `auth.query` is set (the role that runs the query)");
    }
    if (reader_.failed("auth.method")) return;  // an unknown method has no requirements to check
    if (auth.method == AuthMethod::hba && auth.hba_file.empty() && !reader_.failed("auth.hba_file")) {
      reader_.error(reader_.where({"auth.hba_file", "auth.method"}),
                    "`auth.hba_file` is required when `auth.method` is \"hba\"");
    }
    if (auth.method == AuthMethod::cert && !reader_.failed("tls.mode") && config_.tls.mode != TlsMode::verify_ca &&
        config_.tls.mode != TlsMode::verify_full) {
      reader_.error(reader_.where({"auth.method"}),
                    "`auth.method` = \"cert\" needs `tls.mode` = \"verify-ca\" or \"verify-full\" (client "
                    "certificates are only requested and checked then)");
    }
  }

  // min_idle connections are kept open out of `size`, so more than `size` could never be kept. A database or
  // user table is blamed only when it sets one of the two itself.
  void check_min_idle(const PoolSettings& effective, const std::string& path) {
    if (effective.min_idle <= effective.size) return;
    if (reader_.failed(path + ".min_idle") || reader_.failed(path + ".size")) return;
    reader_.error(reader_.where({path + ".min_idle", path + ".size", path}),
                  "`" + path + ".min_idle` (" + std::to_string(effective.min_idle) + ") must not exceed `" + path +
                      ".size` (" + std::to_string(effective.size) + ")");
  }

  template <class Entries>
  void check_min_idle_overrides(const Entries& entries, std::string_view family) {
    for (const auto& [name, entry] : entries) {
      if (!entry.overrides.min_idle && !entry.overrides.size) continue;
      PoolSettings effective = config_.pool;
      entry.overrides.apply_to(effective);
      check_min_idle(effective, key_path(family, name));
    }
  }

  void check_pool_sizes() {
    check_min_idle(config_.pool, "pool");
    check_min_idle_overrides(config_.databases, "databases");
    check_min_idle_overrides(config_.users, "users");
  }

  LoadResult finish() {
    auto& errors = reader_.errors();
    // Positioned errors in file order; those without a position (a missing key) after them.
    const auto order = [](const Diagnostic& d) { return std::pair{d.line > 0 ? d.line : INT_MAX, d.column}; };
    std::stable_sort(errors.begin(), errors.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return order(a) < order(b); });
    if (!errors.empty()) return LoadResult{nullptr, std::move(errors)};
    return LoadResult{std::make_shared<const Config>(std::move(config_)), {}};
  }

  std::string path_;
  std::string config_dir_;
  Reader reader_;
  Config config_;
};

LoadResult internal_error(const std::string& path, const char* what) {
  return LoadResult{nullptr, {Diagnostic{path, 0, 0, std::string("internal error while loading the config: ") + what}}};
}

}  // namespace
}  // namespace detail

LoadResult load_string(std::string_view toml_text, const std::string& path, const EnvLookup& env) {
  try {
    detail::Loader loader(path, env);
    return loader.load(toml_text);
  } catch (const std::exception& e) {
    return detail::internal_error(path, e.what());
  }
}

LoadResult load_file(const std::string& path, const EnvLookup& env) {
  try {
    auto text = detail::read_text_file(path);
    if (!text) return LoadResult{nullptr, {Diagnostic{path, 0, 0, text.error().message}}};
    return load_string(*text, path, env);
  } catch (const std::exception& e) {
    return detail::internal_error(path, e.what());
  }
}

}  // namespace pgweir::config
