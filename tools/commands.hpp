// The subcommands of wsi-heatmap. Each lives in its own file with an options struct, a
// setup_<name>(CLI::App&) that registers it, and a run_<name>(const Options&) that does the work.
// main.cpp only wires them and turns exceptions into exit codes (2 usage, 1 bad input/failure).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <string>

namespace wsi::cli {

// --model, --device, --precision and --preset, as heatmap takes them and batch passes them on
// (tools/shared_options.cpp).
void add_model_options(CLI::App& app, std::string& model, std::string& device, std::string& precision,
                       std::string& preset);

// A child's command line (program, heatmap|extract, SLIDE, options) parsed by that subcommand's
// own parser with its action switched off (tools/shared_options.cpp): batch checks every slide's
// options before any slide runs. Throws UsageError with CLI11's reason.
void check_child_command_line(std::vector<std::string> argv);

void setup_info(CLI::App& app);
void setup_synth(CLI::App& app);
void setup_mask(CLI::App& app);
// setup_extract / setup_heatmap with parse_only: the subcommand parses its options and checks
// what needs no slide (value ranges, words, the model's sidecar), then runs nothing (batch checks
// each child's options with them before any slide runs). The callback owns
// the options' storage, so it must stay in place, not be replaced.
void setup_extract(CLI::App& app, bool parse_only = false);
void setup_evaluate(CLI::App& app);
void setup_evaluate_slides(CLI::App& app);
void setup_train(CLI::App& app);
void setup_heatmap(CLI::App& app, bool parse_only = false);
void setup_batch(CLI::App& app);
void setup_view(CLI::App& app);
void setup_predict(CLI::App& app);

// --html of heatmap and batch (tools/view.cpp): the viewer of one slide's fresh results
// (RESULTS/NAME.viewer), and a batch's viewers and index.html (returns 1 when a viewer failed).
// Print what they wrote; throw wsi::Error.
void write_viewer_after_run(const std::filesystem::path& results, const std::string& name,
                            const std::filesystem::path& slide, bool quiet);
int write_batch_index_after_run(const std::filesystem::path& dir, bool quiet);

// Gives every subcommand registered on `app` a --help footer with examples (tools/help_examples.cpp);
// throws std::logic_error naming a subcommand that has none.
void add_help_examples(CLI::App& app);

// wsi-heatmap.1 (roff) made from `app`: every visible subcommand with its options (type, default,
// help, group) and --help examples (tools/man_page.cpp). setup_man_page registers the hidden
// `man-page [-o FILE]` subcommand that writes it; CMake runs it after linking.
std::string man_page(const CLI::App& app);
void setup_man_page(CLI::App& app);

// --threads bound to `threads` (0 = one per core): negative values are refused when parsed, and
// a count above the cores this process may run on is said on stderr (tools/shared_options.cpp).
CLI::Option* add_threads_option(CLI::App& app, int& threads, const std::string& help);

// Checks for options (tools/checks.cpp). Each throws UsageError with one line naming the value
// (prefixed by `option` where given) and what to do, instead of CLI11's generic texts.
// An existing file (not a directory; `directory_hint` says what to do instead).
CLI::Validator existing_file(const std::string& option, const std::string& directory_hint);
// A whole number >= 0 (up to INT_MAX) / a number >= 0; `zero_means` is said in the message.
CLI::Validator whole_number_at_least_zero(const std::string& option, const std::string& zero_means);
CLI::Validator number_at_least_zero(const std::string& option, const std::string& zero_means);

// -o DIR of the subcommands that write into a directory: created if missing. Throws UsageError
// (one line naming DIR) when it is a file, cannot be created or is not writable.
void prepare_output_dir(const std::filesystem::path& dir);

// A file shipped with wsi-heatmap (models/demo-cnn.pt, pipelines/presets/X.json): the first that
// exists of the installed share dir, the source tree beside the build dir, the source tree this
// binary was built from; empty when none (tools/checks.cpp).
std::filesystem::path find_data_file(const std::string& relative);

// Prints to stderr with the program prefix; the CLI is the only place that prints.
void print_error(const std::string& message);

}  // namespace wsi::cli
