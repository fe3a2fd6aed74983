#include "wsi/sampling.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <sstream>

#include "wsi/error.hpp"

namespace wsi {

namespace {

uint64_t mix(uint64_t a, uint64_t b) { return mix_seed(a, b); }

// Largest-remainder apportionment of `total` by `weights`; ties go to the earlier entry.
std::vector<int64_t> apportion(int64_t total, const std::vector<double>& weights) {
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int64_t> n(weights.size());
  std::vector<std::pair<double, size_t>> rem;
  int64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = sum > 0 ? static_cast<double>(total) * weights[i] / sum : 0.0;
    n[i] = static_cast<int64_t>(std::floor(exact + 1e-9));
    given += n[i];
    rem.push_back({exact - static_cast<double>(n[i]), i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total && k < rem.size(); ++k, ++given) ++n[rem[k].second];
  return n;
}

}  // namespace

BalanceMode parse_balance_mode(const std::string& s) {
  if (s == "none") return BalanceMode::none;
  if (s == "undersample") return BalanceMode::undersample;
  if (s == "oversample") return BalanceMode::oversample;
  throw UsageError("unknown balance mode '" + s + "': use none, undersample or oversample");
}

void BalanceParams::validate() const {
  if (!(ratio > 0) || !std::isfinite(ratio)) throw ConfigError("balance: ratio must be a positive number");
  if (max_per_slide < 0)
    throw ConfigError("--max-per-slide must be 0 (no cap) or more, not " + std::to_string(max_per_slide));
}

double parse_ratio(const std::string& s) {
  char* end = nullptr;
  const auto colon = s.find(':');
  double r = 0;
  if (colon == std::string::npos) {
    r = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) r = -1;
  } else {
    const std::string a = s.substr(0, colon), b = s.substr(colon + 1);
    const double p = std::strtod(a.c_str(), &end);
    const bool ok_a = !a.empty() && end == a.c_str() + a.size();
    const double n = std::strtod(b.c_str(), &end);
    const bool ok_b = !b.empty() && end == b.c_str() + b.size();
    r = ok_a && ok_b && n > 0 ? p / n : -1;
  }
  if (!(r > 0) || !std::isfinite(r))
    throw UsageError("bad ratio '" + s + "': give positives:negatives such as 1:1 or 1:3, or a number");
  return r;
}

std::vector<Pick> select_patches(const std::vector<Candidate>& candidates, const BalanceParams& params,
                                 uint64_t salt) {
  params.validate();
  // (1) Per-slide cap, keeping label proportions.
  std::map<int32_t, std::array<std::vector<size_t>, 2>> by_slide;
  for (size_t i = 0; i < candidates.size(); ++i) by_slide[candidates[i].slide][candidates[i].label ? 1 : 0].push_back(i);
  std::array<std::vector<size_t>, 2> pool;
  for (auto& [slide, lists] : by_slide) {
    SplitMix64 rng(mix(mix(params.seed, salt), static_cast<uint64_t>(slide) + 1));
    const int64_t total = static_cast<int64_t>(lists[0].size() + lists[1].size());
    std::array<int64_t, 2> keep{static_cast<int64_t>(lists[0].size()), static_cast<int64_t>(lists[1].size())};
    if (params.max_per_slide > 0 && total > params.max_per_slide) {
      const auto n = apportion(params.max_per_slide, {static_cast<double>(keep[0]), static_cast<double>(keep[1])});
      keep = {n[0], n[1]};
    }
    for (int l = 0; l < 2; ++l) {
      auto& v = lists[static_cast<size_t>(l)];
      if (static_cast<int64_t>(v.size()) > keep[static_cast<size_t>(l)]) {
        shuffle(v, rng);
        v.resize(static_cast<size_t>(keep[static_cast<size_t>(l)]));
      }
      pool[static_cast<size_t>(l)].insert(pool[static_cast<size_t>(l)].end(), v.begin(), v.end());
    }
  }
  // (2) Balance to `ratio` positives per negative.
  std::vector<Pick> picks;
  SplitMix64 rng(mix(params.seed, salt ^ 0x5bd1e995ULL));
  for (auto& v : pool) std::sort(v.begin(), v.end());  // shuffles below start from a canonical order
  const double neg = static_cast<double>(pool[0].size()), pos = static_cast<double>(pool[1].size());
  std::array<int64_t, 2> want{static_cast<int64_t>(pool[0].size()), static_cast<int64_t>(pool[1].size())};
  if (params.mode != BalanceMode::none && neg > 0 && pos > 0) {
    const bool too_many_pos = pos > params.ratio * neg;
    if (params.mode == BalanceMode::undersample) {
      if (too_many_pos)
        want[1] = std::llround(params.ratio * neg);
      else
        want[0] = std::llround(pos / params.ratio);
    } else {
      if (too_many_pos)
        want[0] = std::llround(pos / params.ratio);
      else
        want[1] = std::llround(params.ratio * neg);
    }
  }
  for (int l = 0; l < 2; ++l) {
    auto& v = pool[static_cast<size_t>(l)];
    const int64_t w = want[static_cast<size_t>(l)], have = static_cast<int64_t>(v.size());
    if (w <= have) {
      if (w < have) {
        shuffle(v, rng);
        v.resize(static_cast<size_t>(w));
      }
      for (size_t c : v) picks.push_back({c, 0, 0});
    } else {
      for (size_t c : v) picks.push_back({c, 0, 0});
      std::vector<size_t> order = v;
      shuffle(order, rng);
      for (int64_t k = 0; k < w - have; ++k) {
        const int copy = static_cast<int>(k / have) + 1;
        const uint8_t op = params.augment ? static_cast<uint8_t>(1 + rng.below(7)) : uint8_t{0};
        picks.push_back({order[static_cast<size_t>(k % have)], copy, op});
      }
    }
  }
  // (3) Grid order per slide, originals before their copies.
  std::sort(picks.begin(), picks.end(), [&](const Pick& a, const Pick& b) {
    const Candidate &ca = candidates[a.candidate], &cb = candidates[b.candidate];
    if (ca.slide != cb.slide) return ca.slide < cb.slide;
    if (ca.index != cb.index) return ca.index < cb.index;
    return a.copy < b.copy;
  });
  return picks;
}

SplitSpec SplitSpec::parse(const std::string& text) {
  SplitSpec spec;
  spec.parts.clear();
  std::stringstream ss(text);
  std::string item;
  const std::string hint = " (expected e.g. train=0.8,valid=0.1,test=0.1)";
  double sum = 0;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("bad split '" + item + "'" + hint);
    const std::string name = item.substr(0, eq), value = item.substr(eq + 1);
    char* end = nullptr;
    const double f = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(f > 0) || f > 1)
      throw UsageError("bad split fraction '" + item + "'" + hint);
    if (name.find_first_of("/\\. ") != std::string::npos)
      throw UsageError("split name '" + name + "' may not contain '/', '\\', '.' or spaces");
    for (const auto& p : spec.parts)
      if (p.first == name) throw UsageError("split '" + name + "' is given twice");
    spec.parts.push_back({name, f});
    sum += f;
  }
  if (spec.parts.empty()) throw UsageError("empty split specification" + hint);
  if (std::abs(sum - 1.0) > 1e-6) {
    std::ostringstream m;
    m << "split fractions of '" << text << "' sum to " << sum << ", not 1";
    throw UsageError(m.str());
  }
  return spec;
}

std::vector<std::string> assign_splits(const std::vector<std::string>& slide_names, const SplitSpec& spec,
                                       uint64_t seed) {
  std::vector<size_t> order(slide_names.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slide_names[a] < slide_names[b]; });
  SplitMix64 rng(mix(seed, 0x73706c6974ULL));
  shuffle(order, rng);
  std::vector<double> weights;
  for (const auto& p : spec.parts) weights.push_back(p.second);
  const auto counts = apportion(static_cast<int64_t>(order.size()), weights);
  std::vector<std::string> out(slide_names.size());
  size_t k = 0;
  for (size_t s = 0; s < counts.size(); ++s)
    for (int64_t i = 0; i < counts[s]; ++i) out[order[k++]] = spec.parts[s].first;
  return out;
}

std::string split_for_name(const std::string& slide_name, const SplitSpec& spec, uint64_t seed) {
  const double u = SplitMix64(mix(fnv1a(slide_name), mix(seed, 0x73706c6974ULL))).uniform();
  double total = 0, cumulative = 0;
  for (const auto& part : spec.parts) total += part.second;
  for (const auto& part : spec.parts) {
    cumulative += part.second;
    if (u * total < cumulative) return part.first;
  }
  return spec.parts.back().first;  // rounding at the top end
}

void apply_d4(uint8_t op, const uint8_t* src, uint8_t* dst, int size) {
  const int n = size - 1;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      int sx = x, sy = y;  // output (x, y) takes input (sx, sy)
      switch (op & 7) {
        case 0: break;
        case 1: sx = y; sy = n - x; break;      // rot90 clockwise
        case 2: sx = n - x; sy = n - y; break;  // rot180
        case 3: sx = n - y; sy = x; break;      // rot270
        case 4: sx = n - x; break;              // flip-h
        case 5: sy = n - y; break;              // flip-v
        case 6: sx = y; sy = x; break;          // transpose
        case 7: sx = n - y; sy = n - x; break;  // anti-transpose
      }
      const uint8_t* p = src + (static_cast<ptrdiff_t>(sy) * size + sx) * 3;
      uint8_t* q = dst + (static_cast<ptrdiff_t>(y) * size + x) * 3;
      q[0] = p[0];
      q[1] = p[1];
      q[2] = p[2];
    }
}

const char* d4_name(uint8_t op) {
  static const char* names[8] = {"", "rot90", "rot180", "rot270", "flip-h", "flip-v", "transpose", "anti-transpose"};
  return names[op & 7];
}

}  // namespace wsi
