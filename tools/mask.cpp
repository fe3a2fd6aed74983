// placeholder: being written
#include "commands.hpp"
namespace wsi::cli {
void setup_mask(CLI::App& /*app*/) {}
}  // namespace wsi::cli
