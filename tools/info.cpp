// `wsi-heatmap info SLIDE [--json] [--properties] [--mpp M]`: what a slide contains.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/json_text.hpp"
#include "commands.hpp"
#include "wsi/slide.hpp"

namespace wsi::cli {
namespace {

struct InfoOptions {
  std::string slide;
  bool json = false;
  bool properties = false;
  std::optional<double> mpp;
};

nlohmann::json to_json(const Slide& s) {
  nlohmann::json j;
  j["path"] = s.path().string();
  j["vendor"] = s.vendor();
  j["pixel_backend"] = std::string(s.pixel_backend());
  j["width"] = s.width();
  j["height"] = s.height();
  const Mpp& m = s.mpp();
  j["mpp"] = {{"x", m.known() ? nlohmann::json(m.x) : nlohmann::json(nullptr)},
              {"y", m.known() ? nlohmann::json(m.y) : nlohmann::json(nullptr)},
              {"source", std::string(to_string(m.source))},
              {"guess", m.is_guess()},
              {"note", m.note}};
  const Bounds& b = s.bounds();
  j["bounds"] = {{"x", b.x}, {"y", b.y}, {"width", b.width}, {"height", b.height},
                 {"from_properties", b.from_properties}};
  j["levels"] = nlohmann::json::array();
  for (int i = 0; i < s.level_count(); ++i) {
    const LevelInfo& l = s.level(i);
    nlohmann::json lj = {{"level", i}, {"width", l.width}, {"height", l.height}, {"downsample", l.downsample},
                         {"tile_width", l.tile_width}, {"tile_height", l.tile_height}};
    lj["mpp"] = m.known() ? nlohmann::json(s.level_mpp(i)) : nlohmann::json(nullptr);
    j["levels"].push_back(lj);
  }
  j["associated_images"] = nlohmann::json::array();
  for (const auto& a : s.associated_images())
    j["associated_images"].push_back({{"name", a.name}, {"width", a.width}, {"height", a.height}});
  j["properties"] = s.properties();
  return j;
}

void print_text(const Slide& s, bool with_properties) {
  std::ostringstream o;
  const Mpp& m = s.mpp();
  o << "slide       " << s.path().string() << "\n"
    << "vendor      " << s.vendor() << "  (pixels decoded by " << s.pixel_backend() << ")\n"
    << "size        " << s.width() << " x " << s.height() << " px (level 0)\n";
  o << "mpp         ";
  if (m.known()) {
    o << m.x << " x " << m.y << " um/px  (from " << to_string(m.source) << ")";
    if (m.is_guess()) o << "  GUESS";
  } else {
    o << "unknown  (no mpp metadata: pass --mpp)";
  }
  o << "\n";
  if (!m.note.empty()) o << "            note: " << m.note << "\n";
  if (auto p = s.property("openslide.objective-power")) o << "objective   " << *p << "x\n";
  const Bounds& b = s.bounds();
  o << "bounds      ";
  if (b.from_properties)
    o << "x=" << b.x << " y=" << b.y << " " << b.width << " x " << b.height << " px (openslide.bounds-*)\n";
  else
    o << "whole slide (no openslide.bounds-*)\n";
  o << "levels      " << s.level_count() << "\n";
  o << "  level      width     height   downsample        mpp       tile\n";
  for (int i = 0; i < s.level_count(); ++i) {
    const LevelInfo& l = s.level(i);
    o << "  " << std::setw(5) << i << std::setw(11) << l.width << std::setw(11) << l.height << std::setw(13)
      << std::setprecision(6) << l.downsample << std::setw(11);
    if (m.known())
      o << std::setprecision(4) << s.level_mpp(i);
    else
      o << "-";
    o << std::setw(11) << (l.tile_width ? std::to_string(l.tile_width) + "x" + std::to_string(l.tile_height) : "-")
      << "\n";
  }
  o << "associated  ";
  if (s.associated_images().empty()) o << "none";
  for (size_t i = 0; i < s.associated_images().size(); ++i) {
    const auto& a = s.associated_images()[i];
    o << (i ? ", " : "") << a.name << " " << a.width << "x" << a.height;
  }
  o << "\n";
  if (with_properties) {
    o << "properties  " << s.properties().size() << "\n";
    for (const auto& [k, v] : s.properties()) o << "  " << k << " = " << v << "\n";
  }
  std::cout << o.str();
}

// Decodes one tile-sized region in the middle of the coarsest level, so a slide whose header is
// fine but whose pixels are corrupt fails here rather than hours into a run.
Region decode_check(const Slide& slide) {
  const int last = slide.level_count() - 1;
  const LevelInfo& l = slide.level(last);
  const int64_t w = std::min<int64_t>(l.width, 256), h = std::min<int64_t>(l.height, 256);
  const auto x = static_cast<int64_t>(static_cast<double>((l.width - w) / 2) * l.downsample);
  const auto y = static_cast<int64_t>(static_cast<double>((l.height - h) / 2) * l.downsample);
  const Region r{last, x, y, w, h};
  slide.read_region(r);
  return r;
}

void run_info(const InfoOptions& opt) {
  SlideOptions so;
  so.mpp_override = opt.mpp;
  const Slide slide(opt.slide, so);
  decode_check(slide);
  if (opt.json)
    std::cout << detail::json_text(to_json(slide), 2) << "\n";
  else
    print_text(slide, opt.properties);
}

}  // namespace

void setup_info(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show a slide's levels, mpp (and where it came from), bounds and associated images");
  sub->add_option("slide", opt->slide, "Slide file (any format OpenSlide reads)")->required();
  sub->add_flag("--json", opt->json, "Print JSON (includes all properties)");
  sub->add_flag("--properties", opt->properties, "Also list every OpenSlide property (text output)");
  sub->add_option("--mpp", opt->mpp, "Override microns per level-0 pixel (when the metadata has none or is wrong)");
  sub->callback([opt] { run_info(*opt); });
}

}  // namespace wsi::cli
