// Private to wsi::view: the web assets of src/view/web, embedded into the binary at build time
// (cmake/embed_files.cmake), so an installed wsi-heatmap needs no share folder to write a viewer.
#pragma once

#include <string_view>

namespace wsi::detail {

// The bytes of the asset `name` (viewer.html, viewer.js, viewer.css, index.html, index.js,
// openseadragon.min.js, LICENSE.txt), or an empty view when there is none of that name.
std::string_view embedded_file(std::string_view name);

}  // namespace wsi::detail
