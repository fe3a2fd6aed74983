// wsi/sampling.hpp — deterministic balancing, per-slide caps, slide-level splits and the D4
// augmentations used for oversampled copies.
//
// Determinism: every random choice comes from SplitMix64 seeded with BalanceParams::seed (and the
// split or slide it concerns), with our own Fisher-Yates shuffle, so a seed gives the same
// dataset on every platform and standard library.
//
// Order of operations for one split: (1) cap each slide at max_per_slide candidates, keeping the
// slide's label proportions (largest remainder); (2) balance the whole split to `ratio`
// positives per negative: undersample drops from the larger side, oversample repeats the smaller
// side (round-robin over a shuffled list, so copies are spread evenly); (3) sort the picks by
// slide and candidate index so the reader walks each slide in grid order.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "wsi/random.hpp"

namespace wsi {

enum class BalanceMode { none, undersample, oversample };
BalanceMode parse_balance_mode(const std::string& s);  // throws UsageError

struct BalanceParams {
  BalanceMode mode = BalanceMode::none;
  double ratio = 1.0;          // positives per negative after balancing (> 0)
  int64_t max_per_slide = 0;   // 0 = no cap
  uint64_t seed = 0;
  bool augment = false;        // oversampled copies get a non-identity flip/rotation

  void validate() const;  // throws ConfigError
};

// Parses "--ratio" as "1:3" (positives:negatives) or a plain number (positives per negative).
double parse_ratio(const std::string& s);  // throws UsageError

struct Candidate {
  int32_t slide = 0;    // index of the slide
  int64_t index = 0;    // index of the patch in that slide's candidate list
  uint8_t label = 0;    // 0 / 1
};

struct Pick {
  size_t candidate = 0;  // index into the candidate vector
  int copy = 0;          // 0 = original, k > 0 = k-th extra copy
  uint8_t augment = 0;   // D4 op (0 = identity), see apply_d4
};

// Selects the patches of one split. `salt` (e.g. a hash of the split name) varies the stream
// between splits while staying deterministic.
std::vector<Pick> select_patches(const std::vector<Candidate>& candidates, const BalanceParams& params,
                                 uint64_t salt = 0);

// A split specification "train=0.8,valid=0.1,test=0.1" (fractions > 0, summing to 1 ± 1e-6).
struct SplitSpec {
  std::vector<std::pair<std::string, double>> parts{{"train", 1.0}};
  static SplitSpec parse(const std::string& s);  // throws UsageError
};

// Assigns each slide (by name) to one split: slides are sorted by name, shuffled with the seed,
// and cut into contiguous groups sized by largest remainder, so no slide is in two splits and
// adding a seed-stable list gives a stable answer. Returns one split name per input slide.
std::vector<std::string> assign_splits(const std::vector<std::string>& slide_names, const SplitSpec& spec,
                                       uint64_t seed);

// Assigns one slide to a split from its name alone: a uniform number drawn from FNV-1a(name)
// and the seed falls into one of the cumulative fractions. Unlike assign_splits, a slide's split
// never depends on the other slides, so an archive that grows (a batch run, shards on a cluster)
// never moves a slide into another split; the fractions then hold on average (binomial spread),
// not exactly. Pure.
std::string split_for_name(const std::string& slide_name, const SplitSpec& spec, uint64_t seed);

// The 8 symmetries of the square: 0 identity, 1 rot90, 2 rot180, 3 rot270, 4 flip-h, 5 flip-v,
// 6 transpose, 7 anti-transpose. Square RGB images only; src and dst must not alias.
void apply_d4(uint8_t op, const uint8_t* src, uint8_t* dst, int size);
const char* d4_name(uint8_t op);  // "" for identity


}  // namespace wsi
