// Command-line options made from a parameter table (include/wsi/params.hpp): typed, with the
// struct's default shown, the table's help and group. The values land in `target` as they are
// parsed; the table's checks run when the command validates its parameters.
#pragma once

#include <CLI/CLI.hpp>
#include <utility>
#include <vector>

#include "wsi/error.hpp"
#include "wsi/params.hpp"

namespace wsi::cli {

template <class S>
struct BoundParam {
  const Param<S>* param;
  CLI::Option* option;
  bool given() const { return option->count() > 0; }
};

// Registers every parameter of `table` on `app`, bound to `target` (which must outlive parsing).
// Parameters whose flag `app` already has are left out (batch registers heatmap's and extract's
// tables on one command). Parameters without a group of their own go to `default_group`.
template <class S>
std::vector<BoundParam<S>> add_param_options(CLI::App& app, const ParamTable<S>& table, S& target,
                                             const std::string& default_group = "") {
  static const S defaults{};
  std::vector<BoundParam<S>> bound;
  for (const Param<S>& p : table) {
    if (app.get_option_no_throw(p.flag) != nullptr) continue;
    CLI::Option* o = std::visit(
        [&](const auto& v) -> CLI::Option* {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, Word<S>>) {
            return app.add_option_function<std::string>(
                p.flag, [&target, f = v.from_text](const std::string& s) { f(target, s); }, p.help);
          } else {
            using T = std::decay_t<decltype(v.ref(target))>;
            if constexpr (std::is_same_v<T, bool>) {
              return app.add_flag_function(
                  p.flag, [&target, r = v.ref, set = !p.negated](std::int64_t) { r(target) = set; }, p.help);
            } else {
              using W = std::conditional_t<std::is_same_v<T, std::optional<int>>, int,
                                           std::conditional_t<std::is_same_v<T, std::optional<double>>, double, T>>;
              return app.add_option_function<W>(
                  p.flag, [&target, r = v.ref](const W& w) { r(target) = w; }, p.help);
            }
          }
        },
        p.value);
    if (!std::holds_alternative<Field<S, bool>>(p.value)) {
      const std::string d = value_text(p, defaults);
      if (!d.empty()) o->default_str(d);
    }
    if (!p.group.empty() || !default_group.empty()) o->group(p.group.empty() ? default_group : p.group);
    bound.push_back({&p, o});
  }
  return bound;
}

// After parsing: throws UsageError when two options that exclude each other were both given.
template <class S>
void check_exclusive(const std::vector<BoundParam<S>>& bound) {
  for (const BoundParam<S>& b : bound) {
    if (b.param->excludes.empty() || !b.given()) continue;
    for (const BoundParam<S>& other : bound)
      if (other.param->flag == b.param->excludes && other.given())
        throw UsageError("give " + b.param->flag + " or " + other.param->flag + ", not both" +
                         (b.param->excludes_note.empty() ? "" : ": " + b.param->excludes_note));
  }
}

// Whether the command line gave `flag`, or an option that excludes it (a preset then leaves it).
template <class S>
bool given_or_excluded(const std::vector<BoundParam<S>>& bound, const std::string& flag) {
  const Param<S>* self = nullptr;
  for (const BoundParam<S>& b : bound)
    if (b.param->flag == flag) self = b.param;
  for (const BoundParam<S>& b : bound) {
    if (!b.given()) continue;
    if (b.param->flag == flag || b.param->excludes == flag || (self && self->excludes == b.param->flag)) return true;
  }
  return false;
}

// Throws UsageError "FLAG`why`" for the first given option that `refused` says may not be given.
template <class S, class Refused>
void refuse_given(const std::vector<BoundParam<S>>& bound, Refused refused, const std::string& why) {
  for (const BoundParam<S>& b : bound)
    if (b.given() && refused(*b.param)) throw UsageError(b.param->flag + why);
}

template <class S>
bool has_flag(const ParamTable<S>& table, const std::string& flag) {
  for (const Param<S>& p : table)
    if (p.flag == flag) return true;
  return false;
}

// The given options as the command line wrote them: a flag alone, an option with each value.
template <class S>
std::vector<std::string> given_arguments(const std::vector<BoundParam<S>>& bound, const std::string& leave_out = "") {
  std::vector<std::string> a;
  for (const BoundParam<S>& b : bound) {
    if (!b.given() || b.param->flag == leave_out) continue;
    if (std::holds_alternative<Field<S, bool>>(b.param->value)) {
      a.push_back(b.param->flag);
      continue;
    }
    for (const std::string& v : b.option->results()) a.insert(a.end(), {b.param->flag, v});
  }
  return a;
}

}  // namespace wsi::cli
