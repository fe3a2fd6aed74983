// The subcommands of wsi-heatmap. Each lives in its own file with an options struct, a
// setup_<name>(CLI::App&) that registers it, and a run_<name>(const Options&) that does the work.
// main.cpp only wires them and turns exceptions into exit codes (2 usage, 1 bad input/failure).
#pragma once

#include <CLI/CLI.hpp>

namespace wsi {
struct TissueParams;
}

namespace wsi::cli {

// The tissue-detection flags (tools/tissue_options.cpp), shared by mask and extract.
void add_tissue_options(CLI::App& app, TissueParams& params);

void setup_info(CLI::App& app);
void setup_synth(CLI::App& app);
void setup_mask(CLI::App& app);
void setup_extract(CLI::App& app);
void setup_evaluate(CLI::App& app);
void setup_evaluate_slides(CLI::App& app);
void setup_train(CLI::App& app);
void setup_heatmap(CLI::App& app);

// Prints to stderr with the program prefix; the CLI is the only place that prints.
void print_error(const std::string& message);

}  // namespace wsi::cli
