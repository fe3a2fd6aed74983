#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>
#include <iostream>

#include "commands.hpp"
#include "wsi/error.hpp"
#include "wsi/runtime.hpp"

namespace wsi::cli {
void print_error(const std::string& message) { std::cerr << "wsi-heatmap: error: " << message << "\n"; }
}  // namespace wsi::cli

int main(int argc, char** argv) {
  // Before any thread starts: keep LibTorch's activation buffers in the heap between batches.
  wsi::tune_allocator_for_inference();
  wsi::limit_blas_threads();
  CLI::App app{"wsi-heatmap: tumour-probability and Grad-CAM heatmaps for whole-slide images", "wsi-heatmap"};
  app.set_version_flag("--version", std::string("wsi-heatmap ") + WSI_VERSION);
  app.require_subcommand(1);
  wsi::cli::setup_info(app);
  wsi::cli::setup_synth(app);
  wsi::cli::setup_mask(app);
  wsi::cli::setup_extract(app);
  wsi::cli::setup_evaluate(app);
  wsi::cli::setup_evaluate_slides(app);
  wsi::cli::setup_train(app);
  wsi::cli::setup_heatmap(app);
  wsi::cli::setup_batch(app);
  wsi::cli::setup_view(app);
  wsi::cli::setup_predict(app);
  wsi::cli::add_help_examples(app);
  wsi::cli::setup_man_page(app);  // hidden, after the examples: it prints them
  // `wsi-heatmap SLIDE ...` means `wsi-heatmap heatmap SLIDE ...`: insert the default subcommand
  // when the first argument is neither a subcommand nor an option of the main program.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] != "--help" && args[0] != "-h" && args[0] != "--version") {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->check_name(args[0]);
    if (!known) args.insert(args.begin(), "heatmap");
  }
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    wsi::cli::print_error(std::string(e.what()) + " (run with --help for usage)");
    return 2;
  } catch (const wsi::UsageError& e) {
    wsi::cli::print_error(e.what());
    return 2;
  } catch (const wsi::Error& e) {
    wsi::cli::print_error(e.what());
    return 1;
  } catch (const std::exception& e) {
    wsi::cli::print_error(std::string("unexpected failure: ") + e.what());
    return 1;
  }
  return 0;
}
