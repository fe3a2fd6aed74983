// Parameter tables: each parameter of a parameter struct (TissueParams, GridParams, HeatmapParams,
// ...) declared once, with its member, command-line flag, JSON key, help text and check. The CLI
// options, validation, --print-config, presets, the summaries' `parameters`, the TIFFs'
// description and batch's forwarding are all made from the same table (tools/param_options.hpp,
// src/core/params_json.hpp), so a parameter cannot be spelled, defaulted or checked two ways.
//
// One key spelling: the JSON key is the flag's name in snake_case (--min-tissue: min_tissue); a
// negated flag (--no-gradcam) keys the member it sets (gradcam: true/false).
// Defaults are the struct's own member initialisers (shown by --help, written by --print-config).
// Tables are built once on first use and never change: reading them is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace wsi {

// Reads and writes one member of S (possibly nested: HeatmapParams -> tissue -> mask_mpp).
template <class S, class T>
struct Field {
  std::function<T&(S&)> ref;
  // Reads through the same path; `s` is only read.
  const T& get(const S& s) const { return ref(const_cast<S&>(s)); }  // NOLINT(cppcoreguidelines-pro-type-const-cast)
};

// A parameter the command line writes as a word or a small grammar ("inside", "center:32",
// "train=0.8,valid=0.2"): parsed by the stage's own parser (throws UsageError for a bad word).
template <class S>
struct Word {
  std::function<std::string(const S&)> to_text;
  std::function<void(S&, const std::string&)> from_text;
};

template <class S>
using ParamValue = std::variant<Field<S, int>, Field<S, int64_t>, Field<S, uint64_t>, Field<S, double>,
                                Field<S, bool>, Field<S, std::optional<int>>, Field<S, std::optional<double>>,
                                Field<S, std::string>, Word<S>>;

template <class S>
struct Param {
  std::string flag;   // "--min-tissue"
  std::string key;    // "min_tissue"
  std::string help;   // one line for --help and the man page
  std::string group;  // --help section ("Tissue detection", "Patch grid", ...)
  ParamValue<S> value;
  bool negated = false;   // a bool flag that sets the member to false (--no-pen-removal)
  std::string excludes;   // another flag that may not be given with this one (--level / --target-mpp)
  std::string excludes_note;  // said after "give A or B, not both: "
  // The parameter's own check: empty when fine, else one line naming the flag, the allowed values
  // and the value found.
  std::function<std::string(const S&)> check;
};

template <class S>
using ParamTable = std::vector<Param<S>>;

// ---- Building tables ----

// snake_case of a flag's name: "--min-tissue" -> "min_tissue".
inline std::string key_of_flag(const std::string& flag) {
  const size_t start = flag.find_first_not_of('-');
  std::string k = start == std::string::npos ? std::string() : flag.substr(start);
  for (char& c : k)
    if (c == '-') c = '_';
  return k;
}

template <class S, class T>
Field<S, T> member(T S::*m) {
  return {[m](S& s) -> T& { return s.*m; }};
}

// The allowed values of a number: "--batch must be in 1..4096, not 0"; `what` adds units or
// meaning ("--mask-mpp must be in 8..32 µm per mask pixel, not 40"). An unset optional passes.
struct Range {
  Range(double lo_, double hi_, std::string what_ = "") : lo(lo_), hi(hi_), what(std::move(what_)) {}
  double lo, hi;
  std::string what;
};

std::string number_text(double v);  // as messages and --help write numbers: 0.972, 4096, inf

template <class T>
std::optional<double> as_number(const T& v) {
  if constexpr (std::is_same_v<T, std::optional<int>> || std::is_same_v<T, std::optional<double>>) {
    return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
  } else {
    return static_cast<double>(v);
  }
}

template <class S, class T>
Param<S> param(T S::*m, std::string flag, std::string help, std::optional<Range> range = std::nullopt) {
  Param<S> p;
  p.key = key_of_flag(flag);
  p.help = std::move(help);
  p.value = member(m);
  if constexpr (!std::is_same_v<T, std::string> && !std::is_same_v<T, bool>) {
    if (range)
      p.check = [m, flag, r = *range](const S& s) -> std::string {
      const std::optional<double> v = as_number(s.*m);
      if (!v || (*v >= r.lo && *v <= r.hi)) return {};
      return flag + " must be in " + number_text(r.lo) + ".." + number_text(r.hi) + (r.what.empty() ? "" : " " + r.what) +
             ", not " + number_text(*v);
      };
  }
  p.flag = std::move(flag);
  return p;
}

// A flag: given, it sets the member to true (or to false with `negated`: --no-gradcam).
template <class S>
Param<S> flag(bool S::*m, std::string flag, std::string help, bool negated = false, std::string key = "") {
  Param<S> p;
  p.key = key.empty() ? key_of_flag(flag) : std::move(key);
  p.flag = std::move(flag);
  p.help = std::move(help);
  p.value = member(m);
  p.negated = negated;
  return p;
}

template <class S>
Param<S> word(std::string flag, std::string help, std::function<std::string(const S&)> to_text,
              std::function<void(S&, const std::string&)> from_text) {
  Param<S> p;
  p.key = key_of_flag(flag);
  p.flag = std::move(flag);
  p.help = std::move(help);
  p.value = Word<S>{std::move(to_text), std::move(from_text)};
  return p;
}

// The table of an inner struct as parameters of the outer one that holds it in `m`.
template <class Outer, class Inner>
ParamTable<Outer> nested(Inner Outer::*m, const ParamTable<Inner>& inner) {
  ParamTable<Outer> out;
  for (const Param<Inner>& p : inner) {
    Param<Outer> q{p.flag, p.key, p.help, p.group, {}, p.negated, p.excludes, p.excludes_note, {}};
    if (p.check) q.check = [m, c = p.check](const Outer& o) { return c(o.*m); };
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, Word<Inner>>) {
            q.value = Word<Outer>{[m, t = v.to_text](const Outer& o) { return t(o.*m); },
                                  [m, f = v.from_text](Outer& o, const std::string& s) { f(o.*m, s); }};
          } else {
            using T = std::remove_reference_t<decltype(v.ref(std::declval<Inner&>()))>;
            q.value = Field<Outer, T>{[m, r = v.ref](Outer& o) -> T& { return r(o.*m); }};
          }
        },
        p.value);
    out.push_back(std::move(q));
  }
  return out;
}

template <class S>
void append(ParamTable<S>& to, const ParamTable<S>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

// Sets the group of every parameter still without one.
template <class S>
ParamTable<S> grouped(ParamTable<S> table, const std::string& group) {
  for (Param<S>& p : table)
    if (p.group.empty()) p.group = group;
  return table;
}

// ---- Using tables ----

// The first failing check of the table, as its one-line message; empty when every value is fine.
template <class S>
std::string first_problem(const ParamTable<S>& table, const S& s) {
  for (const Param<S>& p : table)
    if (p.check)
      if (std::string m = p.check(s); !m.empty()) return m;
  return {};
}

// Calls f with the parameter's value: a word as its text, a field as the member it reads. The one
// dispatch for every reader of values (value_text, the JSON of src/core/params_json.hpp).
template <class S, class F>
decltype(auto) visit_value(const Param<S>& p, const S& s, F&& f) {
  return std::visit(
      [&](const auto& v) -> decltype(auto) {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, Word<S>>)
          return f(v.to_text(s));
        else
          return f(v.get(s));
      },
      p.value);
}

// The value as the command line writes it ("" for an unset optional).
template <class S>
std::string value_text(const Param<S>& p, const S& s) {
  return visit_value(p, s, [](const auto& x) -> std::string {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, bool>) {
      return x ? "true" : "false";
    } else if constexpr (std::is_same_v<T, std::string>) {
      return x;
    } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) {
      return std::to_string(x);
    } else {
      const std::optional<double> n = as_number(x);
      return n ? number_text(*n) : std::string();
    }
  });
}

}  // namespace wsi
