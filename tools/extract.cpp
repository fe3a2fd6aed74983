// placeholder: being written
#include "commands.hpp"
namespace wsi::cli {
void setup_extract(CLI::App& /*app*/) {}
}  // namespace wsi::cli
