// --threads, as every subcommand takes it: checked when parsed, and a count above the cores this
// process may use is said once (the library lowers it: wsi::resolve_threads).
#include <iostream>
#include <string>

#include "commands.hpp"
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

}  // namespace wsi::cli
