// The patch-grid flags, shared by every subcommand that lays a grid over a slide (extract, heatmap).
#include "commands.hpp"
#include "wsi/error.hpp"
#include "wsi/grid.hpp"

namespace wsi::cli {

void add_grid_options(CLI::App& app, GridParams& grid, GridOptions& o, const std::string& target_help) {
  const std::string g = "Patch grid";
  app.add_option("--target-mpp", o.target_mpp, target_help)->group(g);
  app.add_option("--level", o.level, "Read this slide level 1:1 instead of a target mpp")->group(g);
  app.add_option("--mpp-tolerance", grid.mpp_tolerance,
                 "Accept a level up to this fraction coarser than the target (0.03: a 2.0 um level for a "
                 "1.944 um model). Same patches and grid, enlarged slightly from fewer decoded pixels: "
                 "faster, a little less detail. 0 = exact")
      ->capture_default_str()->group(g);
  app.add_option("--stride", grid.stride, "Grid step in patch pixels (< patch size = overlapping patches)")
      ->capture_default_str()->group(g);
  app.add_option("--min-tissue", grid.min_tissue, "Minimum tissue fraction of a patch (0 = every patch)")
      ->capture_default_str()->group(g);
  app.add_option("--edge", o.edge, "inside (whole patches only) or pad")->capture_default_str()->group(g);
}

void apply_grid_options(const GridOptions& o, GridParams& grid, std::optional<double> default_target_mpp) {
  if (o.level && o.target_mpp)
    throw UsageError("give --level or --target-mpp, not both: --level reads that level 1:1, --target-mpp picks the "
                     "level for a resolution");
  grid.edge = parse_edge_policy(o.edge);
  grid.level = o.level;
  grid.target_mpp = o.target_mpp ? o.target_mpp : default_target_mpp;
}

}  // namespace wsi::cli
