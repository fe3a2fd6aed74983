// Options several subcommands take the same way. --threads: checked when parsed, and a count above
// the cores this process may use is said once (the library lowers it: wsi::resolve_threads).
#include <algorithm>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "wsi/error.hpp"
#include "wsi/runtime.hpp"

namespace wsi::cli {

CLI::Option* add_threads_option(CLI::App& app, int& threads, const std::string& help) {
  return app.add_option("--threads", threads, help)
      ->capture_default_str()
      ->check(whole_number_at_least_zero("--threads", "one per core"))
      ->each([](const std::string& text) {
        const int cores = available_cores();
        if (std::stoll(text) > cores)
          std::cerr << "wsi-heatmap: note: --threads " << text << ": this process may run on " << cores
                    << " core(s); using " << cores << "\n";
      });
}

void add_model_options(CLI::App& app, std::string& model, std::string& device, std::string& precision,
                       std::string& preset) {
  app.add_option("--model,-m", model, "Model NAME.pt with its NAME.json sidecar (default: the bundled demo model)");
  app.add_option("--device", device, "cpu or cuda (default: cpu)");
  app.add_option("--precision", precision, "fp32, bf16 (about 2x faster on CPUs with AVX512-BF16) or fp16 (CUDA) "
                 "(default: fp32)");
  app.add_option("--preset", preset, "Parameter preset: a name in pipelines/presets/ (e.g. camelyon16) or a JSON "
                 "file of --print-config's keys");
}

void check_child_command_line(std::vector<std::string> argv) {
  CLI::App app;
  if (argv.at(1) == "extract")
    setup_extract(app, true);
  else
    setup_heatmap(app, true);
  argv.erase(argv.begin());                // the program name
  std::reverse(argv.begin(), argv.end());  // CLI11 takes the arguments last-first
  try {
    app.parse(argv);
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string("an option for the slides is not accepted: ") + e.what());
  }
}

}  // namespace wsi::cli
