// Checks shared by the subcommands' options, each failing with one line that names the path or
// option and what to do (CLI11's own checks say "Value -1 not in range 0.000000 to 1.79e308..."
// or "File does not exist: X").
#include <unistd.h>

#include <charconv>
#include <climits>
#include <filesystem>
#include <sstream>

#include "commands.hpp"
#include "wsi/error.hpp"

namespace wsi::cli {
namespace fs = std::filesystem;

namespace {

std::string relative_note(const fs::path& p) {
  return p.is_relative() ? " (it is relative to " + fs::current_path().string() + ")" : std::string();
}

}  // namespace

CLI::Validator existing_file(const std::string& option, const std::string& directory_hint) {
  // Throws rather than returning CLI11's message, so the line is ours: main prints it as it is.
  return CLI::Validator(
      [option, directory_hint](std::string& value) -> std::string {
        const std::string what = option.empty() ? value : option + " " + value;
        std::error_code ec;
        const fs::file_status st = fs::status(value, ec);
        if (ec || !fs::exists(st)) throw UsageError(what + ": no such file; check the path" + relative_note(value));
        if (fs::is_directory(st)) throw UsageError(what + ": is a directory, not a file; " + directory_hint);
        return {};
      },
      "FILE");
}

CLI::Validator whole_number_at_least_zero(const std::string& option, const std::string& zero_means) {
  return CLI::Validator(
      [option, zero_means](std::string& value) -> std::string {
        long long v = -1;
        const char* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, v);
        if (ec != std::errc() || ptr != end || v < 0 || v > INT_MAX)
          throw UsageError(option + " must be a whole number, 0 or more (0 = " + zero_means + "), not '" + value + "'");
        return {};
      },
      "INT>=0");
}

CLI::Validator number_at_least_zero(const std::string& option, const std::string& zero_means) {
  return CLI::Validator(
      [option, zero_means](std::string& value) -> std::string {
        double v = -1;
        std::istringstream in(value);
        char rest = 0;
        if (!(in >> v) || in >> rest || !(v >= 0) || v > 1e18)
          throw UsageError(option + " must be a number, 0 or more (0 = " + zero_means + "), not '" + value + "'");
        return {};
      },
      "NUMBER>=0");
}

void prepare_output_dir(const fs::path& dir) {
  if (dir.empty()) throw UsageError("the output directory is an empty name; give -o DIR");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError(dir.string() + ": is a file, not a directory; give -o a directory (it is created if missing)");
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec))
    throw UsageError(dir.string() + ": cannot create the output directory" +
                     (ec ? ": " + ec.message() : std::string()) + "; check the path and its permissions");
  if (::access(dir.c_str(), W_OK) != 0)
    throw UsageError(dir.string() + ": the output directory is not writable; fix its permissions or choose another");
}

fs::path find_data_file(const std::string& relative) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path dir = ec ? fs::path(".") : exe.parent_path();
  for (const fs::path& c : {dir / ".." / "share" / "wsi-heatmap" / relative, dir / ".." / relative,
                            fs::path(WSI_SOURCE_DIR) / relative})
    if (fs::exists(c)) return fs::weakly_canonical(c);
  return {};
}

}  // namespace wsi::cli
