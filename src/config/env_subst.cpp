// ${VAR} / ${VAR:-default} expansion for every string value of the config.
#include "env_subst.hpp"

namespace pgweir::config::detail {
namespace {

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

}  // namespace

Expected<std::string> substitute_env(std::string_view text, const EnvLookup& env) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto dollar = text.find('$', i);
    out.append(text.substr(i, dollar - i));
    if (dollar == std::string_view::npos) break;
    const std::string_view rest = text.substr(dollar);
    if (rest.starts_with("$${")) {
      out.append("${");
      i = dollar + 3;
      continue;
    }
    if (!rest.starts_with("${")) {
      out.push_back('$');
      i = dollar + 1;
      continue;
    }
    const auto close = rest.find('}');
    if (close == std::string_view::npos) {
      return make_error("unterminated `${` (write `$${` for a literal `${`)");
    }
    const std::string_view body = rest.substr(2, close - 2);
    const auto separator = body.find(":-");
    const std::string_view name = body.substr(0, separator);
    if (!is_valid_name(name)) {
      return make_error("`${" + std::string(body) +
                        "}` is not a variable reference: write ${NAME} or ${NAME:-default}, NAME of letters, digits "
                        "and _ (write `$${` for a literal `${`)");
    }
    auto value = env(name);
    if (separator != std::string_view::npos) {
      if (!value || value->empty()) value = std::string(body.substr(separator + 2));
    } else if (!value) {
      return make_error("environment variable `" + std::string(name) + "` is not set (use ${" + std::string(name) +
                        ":-default} to give a default)");
    }
    out.append(*value);
    i = dollar + close + 1;
  }
  return out;
}

}  // namespace pgweir::config::detail
