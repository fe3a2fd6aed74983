#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "wsi/error.hpp"
#include "wsi/labels.hpp"

namespace wsi {

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}
}  // namespace

LabelRule LabelRule::parse(const std::string& text) {
  const std::string s = lower(text);
  const auto colon = s.find(':');
  const std::string head = s.substr(0, colon), arg = colon == std::string::npos ? "" : s.substr(colon + 1);
  const std::string forms = " (use center, center:N, any or fraction:T with 0 < T <= 1)";
  LabelRule r;
  double v = 0;
  if (head == "center" || head == "centre") {
    r.kind = LabelRuleKind::center;
    if (colon != std::string::npos) {
      if (!parse_number(arg, v) || v < 1 || v != std::floor(v)) throw UsageError("bad label rule '" + text + "'" + forms);
      r.center_size = static_cast<int>(v);
    }
  } else if (head == "any" && colon == std::string::npos) {
    r.kind = LabelRuleKind::any;
  } else if (head == "fraction") {
    if (!parse_number(arg, v) || !(v > 0 && v <= 1)) throw UsageError("bad label rule '" + text + "'" + forms);
    r.kind = LabelRuleKind::fraction;
    r.threshold = v;
  } else {
    throw UsageError("unknown label rule '" + text + "'" + forms);
  }
  return r;
}

std::string LabelRule::to_string() const {
  std::ostringstream s;
  switch (kind) {
    case LabelRuleKind::center: s << "center:" << center_size; break;
    case LabelRuleKind::any: s << "any"; break;
    case LabelRuleKind::fraction: s << "fraction:" << threshold; break;
  }
  return s.str();
}

ExclusionPolicy parse_exclusion_policy(const std::string& s) {
  if (s == "normal") return ExclusionPolicy::normal;
  if (s == "skip") return ExclusionPolicy::skip;
  throw UsageError("unknown exclusion policy '" + s + "': use normal (excluded areas are not tumour) or skip");
}

MaskValueMap::MaskValueMap() {
  cls.fill(kClassTumour);
  cls[0] = kClassNormal;
}

MaskValueMap MaskValueMap::parse(const std::string& text) {
  MaskValueMap m;
  std::stringstream ss(text);
  std::string item;
  const std::string hint = " (expected e.g. 0=normal,1=tumour,255=tumour,2=exclude)";
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    double v = 0;
    if (eq == std::string::npos || !parse_number(item.substr(0, eq), v) || v < 0 || v > 255 || v != std::floor(v))
      throw UsageError("bad mask value map entry '" + item + "'" + hint);
    const std::string name = lower(item.substr(eq + 1));
    uint8_t c = 0;
    if (name == "normal" || name == "0")
      c = kClassNormal;
    else if (name == "tumour" || name == "tumor" || name == "1")
      c = kClassTumour;
    else if (name == "exclude" || name == "excluded" || name == "exclusion" || name == "2")
      c = kClassExcluded;
    else
      throw UsageError("bad mask class '" + name + "' in '" + item + "'" + hint);
    m.cls[static_cast<size_t>(v)] = c;
  }
  return m;
}

std::string MaskValueMap::to_string() const {
  // Only the values that differ from "0 normal, non-zero tumour".
  const MaskValueMap d;
  std::ostringstream s;
  s << "0=" << (cls[0] == kClassNormal ? "normal" : cls[0] == kClassTumour ? "tumour" : "exclude");
  for (int v = 1; v < 256; ++v)
    if (cls[static_cast<size_t>(v)] != d.cls[static_cast<size_t>(v)])
      s << "," << v << "=" << (cls[static_cast<size_t>(v)] == kClassNormal ? "normal" : "exclude");
  return s.str();
}

PatchLabel label_patch(const uint8_t* classes, int size, const LabelRule& rule, ExclusionPolicy exclusion) {
  PatchLabel l;
  int64_t tumour = 0, excluded = 0;
  const int c0 = std::max(0, (size - rule.center_size) / 2), c1 = std::min(size, c0 + rule.center_size);
  for (int y = 0; y < size; ++y) {
    const uint8_t* row = classes + static_cast<ptrdiff_t>(y) * size;
    const bool centre_row = y >= c0 && y < c1;
    for (int x = 0; x < size; ++x) {
      if (row[x] == kClassTumour) {
        ++tumour;
        if (centre_row && x >= c0 && x < c1) l.center_tumour = true;
      } else if (row[x] == kClassExcluded) {
        ++excluded;
      }
    }
  }
  const double n = static_cast<double>(size) * size;
  l.tumour_fraction = static_cast<double>(tumour) / n;
  l.excluded_fraction = static_cast<double>(excluded) / n;
  l.any_tumour = tumour > 0;
  l.dropped = exclusion == ExclusionPolicy::skip && excluded > 0;
  switch (rule.kind) {
    case LabelRuleKind::center: l.label = l.center_tumour; break;
    case LabelRuleKind::any: l.label = l.any_tumour; break;
    case LabelRuleKind::fraction: l.label = l.tumour_fraction >= rule.threshold - 1e-12; break;
  }
  return l;
}

}  // namespace wsi
