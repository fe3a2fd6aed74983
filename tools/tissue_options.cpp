// The tissue-detection flags, shared by every subcommand that masks tissue (mask, extract, ...).
#include "commands.hpp"
#include "wsi/tissue.hpp"

namespace wsi::cli {

void add_tissue_options(CLI::App& app, TissueParams& p) {
  const std::string g = "Tissue detection";
  app.add_option("--mask-mpp", p.mask_mpp, "Tissue mask resolution, um per mask pixel (8..32)")
      ->capture_default_str()->group(g);
  app.add_option("--white-threshold", p.white_threshold, "min(R,G,B) at or above this is glass")
      ->capture_default_str()->group(g);
  app.add_option("--black-threshold", p.black_threshold, "max(R,G,B) at or below this is an artefact")
      ->capture_default_str()->group(g);
  app.add_option("--min-saturation", p.min_saturation, "Floor of the Otsu saturation threshold (0..1)")
      ->capture_default_str()->group(g);
  app.add_flag("!--no-pen-removal", p.remove_pen, "Keep marker-pen ink (default: removed)")->group(g);
  app.add_option("--closing-um", p.closing_um, "Morphological closing radius, um")->capture_default_str()->group(g);
  app.add_option("--opening-um", p.opening_um, "Morphological opening radius, um")->capture_default_str()->group(g);
  app.add_option("--margin-um", p.margin_um, "Grow the mask by this radius, um")->capture_default_str()->group(g);
  app.add_option("--max-hole-um2", p.max_hole_um2, "Fill holes up to this area, um^2")->group(g);
  app.add_option("--min-component-um2", p.min_component_um2, "Drop tissue pieces smaller than this, um^2")
      ->capture_default_str()->group(g);
}

}  // namespace wsi::cli
