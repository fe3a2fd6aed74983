// Balancing is exact and deterministic; splits never share a slide; D4 ops are true symmetries.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "wsi/error.hpp"
#include "wsi/sampling.hpp"

namespace wsi {
namespace {

// `pos` positives and `neg` negatives spread over `slides` slides.
std::vector<Candidate> candidates(int pos, int neg, int slides = 1) {
  std::vector<Candidate> v;
  for (int i = 0; i < pos + neg; ++i) v.push_back({i % slides, i, static_cast<uint8_t>(i < pos ? 1 : 0)});
  return v;
}

std::pair<int64_t, int64_t> counts(const std::vector<Candidate>& c, const std::vector<Pick>& picks) {
  int64_t p = 0, n = 0;
  for (const auto& k : picks) ++(c[k.candidate].label ? p : n);
  return {p, n};
}

TEST(Balance, UndersampleIsExactForRatio) {
  const auto c = candidates(100, 1000);
  BalanceParams b;
  b.mode = BalanceMode::undersample;
  EXPECT_EQ(counts(c, select_patches(c, b)), std::make_pair(int64_t{100}, int64_t{100}));
  b.ratio = parse_ratio("1:3");
  EXPECT_EQ(counts(c, select_patches(c, b)), std::make_pair(int64_t{100}, int64_t{300}));
  b.ratio = parse_ratio("20:1");  // 20 positives per negative: all 100 positives, 5 negatives
  EXPECT_EQ(counts(c, select_patches(c, b)), std::make_pair(int64_t{100}, int64_t{5}));
}

TEST(Balance, OversampleRepeatsMinorityAndMarksCopies) {
  const auto c = candidates(30, 100);
  BalanceParams b;
  b.mode = BalanceMode::oversample;
  b.augment = true;
  const auto picks = select_patches(c, b);
  EXPECT_EQ(counts(c, picks), std::make_pair(int64_t{100}, int64_t{100}));
  int copies = 0;
  std::map<size_t, int> seen;
  for (const auto& k : picks) {
    if (k.copy > 0) {
      ++copies;
      EXPECT_EQ(c[k.candidate].label, 1);
      EXPECT_NE(k.augment, 0);  // augmented copies are never the identity
    } else {
      EXPECT_EQ(k.augment, 0);
    }
    ++seen[k.candidate];
  }
  EXPECT_EQ(copies, 70);
  // Round-robin: every positive appears 3 or 4 times (100 / 30).
  for (const auto& [cand, n] : seen) {
    if (c[cand].label) {
      EXPECT_TRUE(n == 3 || n == 4) << n;
    }
  }
}

TEST(Balance, NoneKeepsEverythingInGridOrder) {
  const auto c = candidates(5, 7, 2);
  const auto picks = select_patches(c, BalanceParams{});
  ASSERT_EQ(picks.size(), 12u);
  for (size_t i = 1; i < picks.size(); ++i) {
    const auto &a = c[picks[i - 1].candidate], &b = c[picks[i].candidate];
    EXPECT_TRUE(a.slide < b.slide || (a.slide == b.slide && a.index < b.index));
  }
}

TEST(Balance, SameSeedSamePicksOtherSeedOtherPicks) {
  const auto c = candidates(200, 5000, 3);
  BalanceParams b;
  b.mode = BalanceMode::undersample;
  b.seed = 42;
  const auto a1 = select_patches(c, b), a2 = select_patches(c, b);
  ASSERT_EQ(a1.size(), a2.size());
  for (size_t i = 0; i < a1.size(); ++i) EXPECT_EQ(a1[i].candidate, a2[i].candidate);
  b.seed = 43;
  const auto a3 = select_patches(c, b);
  bool differ = false;
  for (size_t i = 0; i < a1.size(); ++i) differ |= a1[i].candidate != a3[i].candidate;
  EXPECT_TRUE(differ);
}

TEST(Balance, MaxPerSlideCapsEachSlideKeepingProportions) {
  auto c = candidates(100, 900, 1);
  for (int i = 0; i < 50; ++i) c.push_back({1, 1000 + i, 0});  // a small second slide
  BalanceParams b;
  b.max_per_slide = 100;
  const auto picks = select_patches(c, b);
  std::map<int32_t, std::pair<int, int>> per;
  for (const auto& k : picks) {
    auto& pn = per[c[k.candidate].slide];
    ++(c[k.candidate].label ? pn.first : pn.second);
  }
  EXPECT_EQ(per[0], std::make_pair(10, 90));
  EXPECT_EQ(per[1], std::make_pair(0, 50));
}

TEST(Balance, RatioParsingAndValidation) {
  EXPECT_DOUBLE_EQ(parse_ratio("1:3"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(parse_ratio("2"), 2.0);
  for (const char* bad : {"", "0", "1:0", "a:b", "-1", "1:"}) EXPECT_THROW(parse_ratio(bad), UsageError) << bad;
  EXPECT_THROW(parse_balance_mode("smote"), UsageError);
}

TEST(Splits, EverySlideInExactlyOneSplitSizedByFractions) {
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("slide_" + std::to_string(i));
  const auto spec = SplitSpec::parse("train=0.8,valid=0.1,test=0.1");
  const auto s = assign_splits(names, spec, 7);
  std::map<std::string, int> n;
  for (const auto& x : s) ++n[x];
  EXPECT_EQ(n["train"], 16);
  EXPECT_EQ(n["valid"], 2);
  EXPECT_EQ(n["test"], 2);
  // Deterministic and independent of input order.
  auto reversed = names;
  std::reverse(reversed.begin(), reversed.end());
  const auto r = assign_splits(reversed, spec, 7);
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(s[i], r[names.size() - 1 - i]);
}

TEST(Splits, SplitByNameIsStableAndNearTheFractionsOnAverage) {
  const auto spec = SplitSpec::parse("train=0.7,valid=0.1,test=0.2");
  std::map<std::string, int> n;
  for (int i = 0; i < 4000; ++i) ++n[split_for_name("slide_" + std::to_string(i), spec, 7)];
  // Binomial spread: 4000 draws put each fraction within +-0.03 (over 4 standard deviations).
  EXPECT_NEAR(n["train"] / 4000.0, 0.7, 0.03);
  EXPECT_NEAR(n["valid"] / 4000.0, 0.1, 0.03);
  EXPECT_NEAR(n["test"] / 4000.0, 0.2, 0.03);
  // A slide's split depends on its name and the seed only (no other slide, no call order).
  EXPECT_EQ(split_for_name("tumor_001", spec, 7), split_for_name("tumor_001", spec, 7));
  int moved = 0;
  for (int i = 0; i < 200; ++i)
    moved += split_for_name("slide_" + std::to_string(i), spec, 7) != split_for_name("slide_" + std::to_string(i), spec, 8);
  EXPECT_GT(moved, 20) << "another seed gives another assignment";
  EXPECT_EQ(split_for_name("anything", SplitSpec::parse("train=1"), 3), "train");
}

TEST(Splits, ParseRejectsBadSpecs) {
  for (const char* bad : {"train=0.8", "train=0.5,train=0.5", "a/b=1", "train", "train=x", "train=0"})
    EXPECT_THROW(SplitSpec::parse(bad), UsageError) << bad;
  EXPECT_EQ(SplitSpec::parse("train=0.7,test=0.3").parts.size(), 2u);
}

TEST(D4, OpsAreDistinctSymmetriesAndRot90FourTimesIsIdentity) {
  const int n = 5;
  std::vector<uint8_t> src(n * n * 3);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i);
  std::set<std::vector<uint8_t>> results;
  for (uint8_t op = 0; op < 8; ++op) {
    std::vector<uint8_t> dst(src.size());
    apply_d4(op, src.data(), dst.data(), n);
    results.insert(dst);
  }
  EXPECT_EQ(results.size(), 8u);
  std::vector<uint8_t> a = src, b(src.size());
  for (int k = 0; k < 4; ++k) {
    apply_d4(1, a.data(), b.data(), n);
    a.swap(b);
  }
  EXPECT_EQ(a, src);
  // rot90 is clockwise: the top-left pixel goes to the top-right.
  std::vector<uint8_t> r(src.size());
  apply_d4(1, src.data(), r.data(), n);
  EXPECT_EQ(r[static_cast<size_t>((0 * n + (n - 1)) * 3)], src[0]);
}

}  // namespace
}  // namespace wsi
