// GridParams' table (grid.hpp): the patch-grid flags, their keys, defaults, help and checks.
#include <cmath>

#include "wsi/error.hpp"
#include "wsi/grid.hpp"

namespace wsi {

std::string to_string(EdgePolicy e) { return e == EdgePolicy::inside ? "inside" : "pad"; }

const ParamTable<GridParams>& grid_param_table() {
  using P = GridParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t = {
        param(&P::target_mpp, "--target-mpp",
              "Read patches at this um per patch pixel (heatmap: the model's mpp; extract: 0.972, PCam's)"),
        param(&P::level, "--level", "Read this slide level 1:1 instead of a target mpp"),
        param(&P::mpp_tolerance, "--mpp-tolerance",
              "Accept a level up to this fraction coarser than the target (0.03: a 2.0 um level for a 1.944 um "
              "model). Same patches and grid, enlarged slightly from fewer decoded pixels: faster, a little less "
              "detail. 0 = exact",
              Range{0, 0.25, "(a fraction: 0.03 accepts a level 3 % coarser than the target)"}),
        param(&P::stride, "--stride", "Grid step in patch pixels (< patch size = overlapping patches)"),
        param(&P::min_tissue, "--min-tissue", "Minimum tissue fraction of a patch (0 = every patch)",
              Range{0, 1, "(the tissue fraction of a patch; 0 = every patch)"}),
        word<P>("--edge", "inside (whole patches only) or pad", [](const P& g) { return to_string(g.edge); },
                [](P& g, const std::string& s) { g.edge = parse_edge_policy(s); }),
    };
    t[0].check = [](const P& g) -> std::string {
      if (g.level || !g.target_mpp || (*g.target_mpp > 0.0 && std::isfinite(*g.target_mpp))) return {};
      return "--target-mpp must be a positive number of micrometres per pixel, not " + number_text(*g.target_mpp);
    };
    t[1].check = [](const P& g) -> std::string {
      if (!g.level || *g.level >= 0) return {};
      return "--level must be 0 (the full resolution) or more, not " + std::to_string(*g.level);
    };
    t[1].excludes = "--target-mpp";
    t[1].excludes_note = "--level reads that level 1:1, --target-mpp picks the level for a resolution";
    t[3].check = [](const P& g) -> std::string {
      if (g.stride >= 1 && g.stride <= g.patch_size * 4) return {};
      return "--stride must be in 1.." + std::to_string(g.patch_size * 4) +
             " patch pixels (up to 4 patch sides), not " + std::to_string(g.stride);
    };
    return grouped(std::move(t), "Patch grid");
  }();
  return table;
}

// The messages name the command-line options (and preset keys) that set these fields.
void GridParams::validate() const {
  if (patch_size < 8 || patch_size > 4096)
    throw ConfigError("--patch-size must be in 8..4096 pixels, not " + std::to_string(patch_size));
  if (!level && !target_mpp) throw ConfigError("give --target-mpp (micrometres per patch pixel) or --level");
  if (const std::string m = first_problem(grid_param_table(), *this); !m.empty()) throw ConfigError(m);
}

}  // namespace wsi
