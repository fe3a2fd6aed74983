#include "core/pending_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "wsi/error.hpp"

namespace wsi::detail {
namespace fs = std::filesystem;

fs::path temporary_name(const fs::path& final_path) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream s;
  s << "." << final_path.filename().string() << ".partial-" << ::getpid() << "-" << counter++;
  return final_path.parent_path() / s.str();
}

PendingFile::PendingFile(fs::path final_path) : final_(std::move(final_path)), tmp_(temporary_name(final_)) {
  if (!final_.parent_path().empty() && !fs::is_directory(final_.parent_path()))
    throw WriteError(final_, "the output directory " + final_.parent_path().string() +
                                 " does not exist; create it first");
}

PendingFile::~PendingFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void PendingFile::commit() {
  std::error_code ec;
  fs::rename(tmp_, final_, ec);
  if (ec) throw WriteError(final_, "cannot rename the finished file into place: " + ec.message());
  committed_ = true;
}

void write_text_file(const fs::path& path, const std::string& text) {
  PendingFile out(path);
  {
    std::ofstream f(out.tmp(), std::ios::binary);
    if (!f.is_open()) throw WriteError(path, std::string("cannot create the file: ") + std::strerror(errno));
    f << text;
    f.flush();
    if (!f) throw WriteError(path, "writing failed (is the disk full?)");
  }
  out.commit();
}

}  // namespace wsi::detail
