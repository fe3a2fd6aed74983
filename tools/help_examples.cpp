// An example footer for every subcommand's --help: what a new user types first. Kept in one table
// so a test can check that no subcommand lacks one (add_help_examples throws for a missing entry).
#include <map>
#include <string>
#include <vector>

#include "commands.hpp"

namespace wsi::cli {

namespace {

const std::map<std::string, std::vector<std::string>>& examples() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"info", {"wsi-heatmap info slide.svs", "wsi-heatmap info slide.svs --json"}},
      {"synth", {"wsi-heatmap synth -o s.tif --size 20000x20000 --mask s_mask.tif --annotations s.xml"}},
      {"mask", {"wsi-heatmap mask slide.svs -o slide_mask.png --overlay slide_overlay.png"}},
      {"extract",
       {"wsi-heatmap extract s.tif --mask s_mask.tif -o ds --balance undersample --ratio 1:1",
        "wsi-heatmap extract slides/*.tif --annotations 'xml/{stem}.xml' -o ds --format kaggle"}},
      {"evaluate", {"wsi-heatmap evaluate pcam/test_x.h5 -m model.pt -o eval --feature-maps 8"}},
      {"evaluate-slides",
       {"wsi-heatmap evaluate-slides --results out/ --truth masks/ --slides slides/ -o eval"}},
      {"train",
       {"wsi-heatmap train pcam/train_x.h5 --val pcam/valid_x.h5 -o models/cnn --epochs 20",
        "wsi-heatmap train pcam/train_x.h5 --val pcam/valid_x.h5 --init init/r50.pt -o models/r50 --freeze features"}},
      {"heatmap",
       {"wsi-heatmap slide.svs -o out/", "wsi-heatmap slide.svs -o out/ --model my-resnet.pt --preset camelyon16 --html"}},
      {"batch",
       {"wsi-heatmap batch /data/archive -o results/ --html",
        "wsi-heatmap batch /data/archive -o results/ --retry-failed"}},
      {"view", {"wsi-heatmap view out/   # then open out/NAME.viewer/index.html"}},
      {"predict",
       {"wsi-heatmap predict kaggle/test -m model.pt -o pred --kaggle-submission pred/submission.csv",
        "wsi-heatmap predict figures/ -m model.pt -o ext --mpp 0.5 --min-purple 0.25 --gradcam ext/cams"}},
  };
  return table;
}

}  // namespace

void add_help_examples(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    const auto it = examples().find(sub->get_name());
    if (it == examples().end())
      throw std::logic_error("no --help example for subcommand '" + sub->get_name() + "' (tools/help_examples.cpp)");
    std::string footer = "\nExamples:";
    for (const auto& e : it->second) footer += "\n  " + e;
    sub->footer(footer);
  }
}

}  // namespace wsi::cli
