// wsi-heatmap.1, written from the CLI11 App itself (every subcommand, its options with type,
// default, help and group, and its --help examples), so the man page cannot drift from the CLI.
// CMake runs the hidden `wsi-heatmap man-page -o wsi-heatmap.1` after linking the binary.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "core/pending_file.hpp"

namespace wsi::cli {

namespace {

// Text for roff: backslashes and hyphens escaped, non-ASCII UTF-8 as \[uXXXX] (groff reads its
// input as Latin-1 unless preconv runs first), and a leading '.' or '\'' made literal.
std::string roff(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\\') out += "\\e";
      else if (c == '-') out += "\\-";
      else if (c == '\n') out += ' ';
      else out += static_cast<char>(c);
      ++i;
      continue;
    }
    const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    std::uint32_t cp = extra == 3 ? c & 0x07u : extra == 2 ? c & 0x0Fu : c & 0x1Fu;
    bool valid = extra > 0 && i + static_cast<std::size_t>(extra) < text.size();
    for (std::size_t k = 1; valid && k <= static_cast<std::size_t>(extra); ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      valid = (cc & 0xC0u) == 0x80u;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (!valid) {
      out += '?';
      ++i;
      continue;
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "\\[u%04X]", static_cast<unsigned>(cp));
    out += hex;
    i += static_cast<std::size_t>(extra) + 1;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

// "-o, --out" as the option was declared, short names first.
std::string option_names(const CLI::Option& opt) {
  std::string names;
  for (const auto& s : opt.get_snames()) names += (names.empty() ? "" : ", ") + ("-" + s);
  for (const auto& l : opt.get_lnames()) names += (names.empty() ? "" : ", ") + ("--" + l);
  return names;
}

void write_option(std::ostringstream& out, const CLI::Option& opt) {
  out << ".TP\n";
  if (opt.nonpositional()) out << "\\fB" << roff(option_names(opt)) << "\\fR";
  else out << "\\fI" << roff(opt.get_name(true, false)) << "\\fR";
  if (opt.get_type_size() != 0 && !opt.get_type_name().empty()) out << " \\fI" << roff(opt.get_type_name()) << "\\fR";
  if (opt.get_expected_max() == CLI::detail::expected_max_vector_size) out << " ...";
  if (!opt.get_description().empty()) out << "\n" << roff(opt.get_description());
  // Each note on a line of its own, so a default such as "." stays readable.
  if (opt.get_required()) out << "\n.br\nRequired.";
  if (!opt.get_default_str().empty()) out << "\n.br\nDefault: \\fB" << roff(opt.get_default_str()) << "\\fR";
  if (!opt.get_envname().empty()) out << "\n.br\nEnvironment: \\fB" << roff(opt.get_envname()) << "\\fR";
  out << "\n";
}

void write_subcommand(std::ostringstream& out, const CLI::App& sub) {
  out << ".SS \"" << roff("wsi-heatmap " + sub.get_name()) << "\"\n" << roff(sub.get_description()) << "\n";
  const auto positionals = sub.get_options([](const CLI::Option* o) { return !o->nonpositional() && !o->get_group().empty(); });
  if (!positionals.empty()) {
    out << ".PP\n\\fBArguments\\fR\n.RS\n";
    for (const CLI::Option* o : positionals) write_option(out, *o);
    out << ".RE\n";
  }
  // Groups in the order --help prints them; an empty group name hides an option.
  for (const std::string& group : sub.get_groups()) {
    if (group.empty()) continue;
    const auto opts = sub.get_options(
        [&](const CLI::Option* o) { return o->nonpositional() && o->get_group() == group; });
    if (opts.empty()) continue;
    out << ".PP\n\\fB" << roff(group) << "\\fR\n.RS\n";
    for (const CLI::Option* o : opts) write_option(out, *o);
    out << ".RE\n";
  }
  // The footer is add_help_examples' "\nExamples:\n  wsi-heatmap ..." block.
  std::istringstream footer(sub.get_footer());
  std::string line;
  bool any = false;
  while (std::getline(footer, line)) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string::npos || line.rfind("Examples:", 0) == 0) continue;
    if (!any) out << ".PP\n\\fBExamples\\fR\n.RS\n.nf\n";
    any = true;
    out << roff(line.substr(start)) << "\n";
  }
  if (any) out << ".fi\n.RE\n";
}

}  // namespace

std::string man_page(const CLI::App& app) {
  std::ostringstream out;
  const std::string& about = app.get_description();  // "wsi-heatmap: what it does"
  const auto colon = about.find(": ");
  out << ".TH WSI\\-HEATMAP 1 \"\" \"wsi\\-heatmap " << roff(WSI_VERSION) << "\" \"User Commands\"\n"
      << ".SH NAME\nwsi\\-heatmap \\- " << roff(colon == std::string::npos ? about : about.substr(colon + 2)) << "\n"
      << ".SH SYNOPSIS\n"
      << ".B wsi\\-heatmap\n\\fISLIDE\\fR... [\\fIoptions\\fR]\n.br\n"
      << ".B wsi\\-heatmap\n\\fISUBCOMMAND\\fR [\\fIoptions\\fR]\n.br\n"
      << ".B wsi\\-heatmap\n[\\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR]\n"
      << ".SH DESCRIPTION\n"
      << "A first argument that is not a subcommand runs \\fBheatmap\\fR: \\fBwsi\\-heatmap SLIDE\\fR is "
         "\\fBwsi\\-heatmap heatmap SLIDE\\fR. Every subcommand also takes \\fB\\-h, \\-\\-help\\fR.\n"
      << ".SH COMMANDS\n";
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); }))
    write_subcommand(out, *sub);
  out << ".SH EXIT STATUS\n"
         "0 on success; 2 for a usage error (an unknown option, a bad value, a missing file); 1 for bad "
         "input data or a failed read or write; 130 after Ctrl\\-C. Errors are one line on standard "
         "error: \\fBwsi\\-heatmap: error:\\fR followed by the file or option and what to do.\n"
         ".SH FILES\n"
         "Outputs are written under a temporary name (\\fI.NAME.partial\\-*\\fR) beside the final one "
         "and renamed when complete.\n"
         ".SH SEE ALSO\n"
         "\\fBopenslide\\-show\\-properties\\fR(1), \\fBvips\\fR(1); the documentation in the "
         "source tree's \\fIdocs/\\fR folder.\n";
  return out.str();
}

void setup_man_page(CLI::App& app) {
  auto out = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("man-page", "Write the man page wsi-heatmap.1 (roff) made from this CLI");
  sub->group("");  // hidden: a build step, not a user's command
  sub->add_option("--out,-o", *out, "Where to write it (default: standard output)");
  CLI::App* root = &app;
  sub->callback([out, root] {
    const std::string page = man_page(*root);
    if (out->empty()) std::fwrite(page.data(), 1, page.size(), stdout);
    else detail::write_text_file(*out, page);
  });
}

}  // namespace wsi::cli
