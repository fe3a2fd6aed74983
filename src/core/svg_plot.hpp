// Minimal SVG line charts for reports (ROC and FROC curves, learning curves): no dependency,
// opens in any browser and in GitHub's file view. Library-private (src/core).
// Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

namespace wsi::detail {

struct PlotSeries {
  std::string label;   // legend text ("" = no legend entry)
  std::string colour;  // CSS colour
  std::vector<double> x, y;
  bool dashed = false;
  bool markers = false;  // a dot at each point
};

struct PlotSpec {
  std::string title, x_label, y_label;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool x_log2 = false;  // logarithmic x axis (base 2), e.g. FROC's false positives per slide
  std::vector<PlotSeries> series;
  bool x_integer = false;  // integer ticks on x (epochs)
  bool legend_bottom = false;  // legend in the lower left corner instead of the upper left
  std::vector<std::string> notes;  // lines printed in the lower right corner (e.g. "AUC 0.97")
  std::string id = "plot";         // unique per document when several charts share one SVG
  int width = 480, height = 400;
};

std::string line_plot_svg(const PlotSpec& spec);

}  // namespace wsi::detail
