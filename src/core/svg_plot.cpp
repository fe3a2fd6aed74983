// SVG line charts (see svg_plot.hpp).
#include "core/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace wsi::detail {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  std::ostringstream s;
  s << std::setprecision(3) << v;
  return s.str();
}

}  // namespace

std::string line_plot_svg(const PlotSpec& p) {
  const double left = 70, top = p.title.empty() ? 15 : 35, right = 20, bottom = 50;
  const double w = p.width - left - right, h = p.height - top - bottom;
  const auto tx = [&](double x) {
    const double lo = p.x_log2 ? std::log2(p.x_min) : p.x_min, hi = p.x_log2 ? std::log2(p.x_max) : p.x_max;
    const double v = p.x_log2 ? std::log2(std::max(x, p.x_min)) : x;
    return left + (hi > lo ? (v - lo) / (hi - lo) : 0.0) * w;
  };
  const auto ty = [&](double y) {
    return top + (p.y_max > p.y_min ? 1.0 - (y - p.y_min) / (p.y_max - p.y_min) : 0.0) * h;
  };
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << p.width << "\" height=\"" << p.height
    << "\" viewBox=\"0 0 " << p.width << " " << p.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!p.title.empty())
    s << "<text x=\"" << p.width / 2.0 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << escape(p.title)
      << "</text>\n";
  // Ticks: 5 divisions, or the powers of two on a log axis.
  std::vector<double> xt, yt;
  if (p.x_log2) {
    for (double v = std::exp2(std::ceil(std::log2(p.x_min))); v <= p.x_max * 1.0001; v *= 2) xt.push_back(v);
  } else if (p.x_integer) {
    const double step = std::max(1.0, std::ceil((p.x_max - p.x_min) / 6));
    for (double v = std::ceil(p.x_min); v <= p.x_max + 1e-9; v += step) xt.push_back(v);
  } else {
    for (int i = 0; i <= 5; ++i) xt.push_back(p.x_min + (p.x_max - p.x_min) * i / 5.0);
  }
  for (int i = 0; i <= 5; ++i) yt.push_back(p.y_min + (p.y_max - p.y_min) * i / 5.0);
  for (double v : xt)
    s << "<line x1=\"" << tx(v) << "\" y1=\"" << top << "\" x2=\"" << tx(v) << "\" y2=\"" << top + h
      << "\" stroke=\"#eee\"/><text x=\"" << tx(v) << "\" y=\"" << top + h + 16 << "\" text-anchor=\"middle\">"
      << number(v) << "</text>\n";
  for (double v : yt)
    s << "<line x1=\"" << left << "\" y1=\"" << ty(v) << "\" x2=\"" << left + w << "\" y2=\"" << ty(v)
      << "\" stroke=\"#eee\"/><text x=\"" << left - 6 << "\" y=\"" << ty(v) + 4 << "\" text-anchor=\"end\">"
      << number(v) << "</text>\n";
  s << "<clipPath id=\"" << p.id << "-area\"><rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
    << "\"/></clipPath>\n<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
    << "\" fill=\"none\" stroke=\"black\"/>\n"
    << "<text x=\"" << left + w / 2 << "\" y=\"" << p.height - 12 << "\" text-anchor=\"middle\">" << escape(p.x_label)
    << "</text>\n<text transform=\"translate(16," << top + h / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << escape(p.y_label) << "</text>\n";
  int legend = 0;
  for (const auto& series : p.series) {
    s << "<polyline clip-path=\"url(#" << p.id << "-area)\" fill=\"none\" stroke=\"" << series.colour << "\" stroke-width=\"2\""
      << (series.dashed ? " stroke-dasharray=\"5,4\"" : "") << " points=\"";
    const size_t n = std::min(series.x.size(), series.y.size());
    for (size_t i = 0; i < n; ++i) s << tx(series.x[i]) << "," << ty(series.y[i]) << " ";
    s << "\"/>\n";
    if (series.markers)
      for (size_t i = 0; i < n; ++i)
        s << "<circle cx=\"" << tx(series.x[i]) << "\" cy=\"" << ty(series.y[i]) << "\" r=\"3\" fill=\""
          << series.colour << "\"/>\n";
    if (!series.label.empty()) {
      const double ly = p.legend_bottom ? top + h - 10 - 16.0 * static_cast<double>(p.series.size() - 1 - legend++)
                                        : top + 14 + 16.0 * legend++;
      s << "<line x1=\"" << left + 10 << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + 30 << "\" y2=\"" << ly - 4
        << "\" stroke=\"" << series.colour << "\" stroke-width=\"2\"" << (series.dashed ? " stroke-dasharray=\"5,4\"" : "")
        << "/><text x=\"" << left + 36 << "\" y=\"" << ly << "\">" << escape(series.label) << "</text>\n";
    }
  }
  for (size_t i = 0; i < p.notes.size(); ++i)
    s << "<text x=\"" << left + w - 8 << "\" y=\"" << top + h - 10 - 16.0 * static_cast<double>(p.notes.size() - 1 - i)
      << "\" text-anchor=\"end\" font-size=\"13\">" << escape(p.notes[i]) << "</text>\n";
  s << "</svg>\n";
  return s.str();
}

}  // namespace wsi::detail
