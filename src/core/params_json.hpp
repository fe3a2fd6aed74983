// Parameter tables (include/wsi/params.hpp) as JSON: the `parameters` of summaries and TIFF
// descriptions, --print-config, and presets read back. Private to the library and the CLI.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "wsi/error.hpp"
#include "wsi/params.hpp"

namespace wsi::detail {

// The value of one parameter: numbers as numbers (infinity and an unset optional as null),
// flags as true/false, words as text.
template <class S>
nlohmann::json param_json(const Param<S>& p, const S& s) {
  return visit_value(p, s, [](const auto& x) -> nlohmann::json {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, double>) {
      return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
    } else if constexpr (std::is_same_v<T, std::optional<int>> || std::is_same_v<T, std::optional<double>>) {
      return x ? nlohmann::json(*x) : nlohmann::json(nullptr);
    } else {
      return nlohmann::json(x);
    }
  });
}

// Every parameter of the table under its key.
template <class S>
nlohmann::json params_json(const ParamTable<S>& table, const S& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const Param<S>& p : table) j[p.key] = param_json(p, s);
  return j;
}

// Sets one parameter from JSON (a preset). Throws ConfigError "`where`: "key" must be ...".
template <class S>
void set_param_from_json(const Param<S>& p, S& s, const nlohmann::json& j, const std::string& where) {
  const auto bad = [&](const std::string& want) {
    throw ConfigError(where + ": \"" + p.key + "\" must be " + want + ", not " + j.dump());
  };
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Word<S>>) {
          if (!j.is_string() && !j.is_number()) bad("text such as \"" + v.to_text(S{}) + "\"");
          v.from_text(s, j.is_string() ? j.get<std::string>() : j.dump());
        } else {
          auto& x = v.ref(s);
          using T = std::decay_t<decltype(x)>;
          constexpr bool optional = std::is_same_v<T, std::optional<int>> || std::is_same_v<T, std::optional<double>>;
          if constexpr (optional) {
            if (j.is_null()) {  // unset: the command's own default (e.g. the model's mpp)
              x.reset();
              return;
            }
          }
          if constexpr (std::is_same_v<T, bool>) {
            if (!j.is_boolean()) bad("true or false");
            x = j.get<bool>();
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (!j.is_string()) bad("text");
            x = j.get<std::string>();
          } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
            if (j.is_null() && std::is_same_v<T, double>) {
              x = std::numeric_limits<double>::infinity();  // as params_json writes infinity
            } else {
              if (!j.is_number()) bad("a number");
              x = j.get<double>();
            }
          } else {  // whole numbers
            if (!j.is_number_integer() && !j.is_number_unsigned()) bad("a whole number");
            using W = std::conditional_t<std::is_same_v<T, std::optional<int>>, int, T>;
            const auto w = j.get<long long>();
            if (w < static_cast<long long>(std::numeric_limits<W>::min()) ||
                (w > 0 && static_cast<unsigned long long>(w) > static_cast<unsigned long long>(std::numeric_limits<W>::max())))
              bad("a whole number in range");
            x = static_cast<W>(w);
          }
        }
      },
      p.value);
}

// The parameter with this key, or nullptr.
template <class S>
const Param<S>* find_param(const ParamTable<S>& table, const std::string& key) {
  for (const Param<S>& p : table)
    if (p.key == key) return &p;
  return nullptr;
}

}  // namespace wsi::detail
