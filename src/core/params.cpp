// The number format of parameter tables (params.hpp): what --help, messages and presets show.
#include <sstream>

#include "wsi/params.hpp"

namespace wsi {

std::string number_text(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace wsi
