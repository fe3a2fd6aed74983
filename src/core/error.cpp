#include "wsi/error.hpp"

#include <sstream>

#include "wsi/region.hpp"  // to_string(Region)

namespace wsi {

std::string to_string(const Region& r) {
  std::ostringstream s;
  s << "level " << r.level << ", x=" << r.x << " y=" << r.y << " (level-0 px), " << r.w << "x"
    << r.h << " (level-" << r.level << " px)";
  return s.str();
}

SlideError::SlideError(std::filesystem::path path, const std::string& what)
    : Error(path.string() + ": " + what), path_(std::move(path)) {}

RegionReadError::RegionReadError(std::filesystem::path path, const Region& region,
                                 const std::string& what)
    : SlideError(std::move(path), "cannot read " + to_string(region) + ": " + what),
      region_(region) {}

WriteError::WriteError(std::filesystem::path path, const std::string& what)
    : Error(path.string() + ": " + what), path_(std::move(path)) {}

ModelError::ModelError(std::filesystem::path path, const std::string& what)
    : Error(path.string() + ": " + what), path_(std::move(path)) {}

}  // namespace wsi
