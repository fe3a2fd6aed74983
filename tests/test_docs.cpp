// The documentation against the program it documents: every `wsi-heatmap SUBCOMMAND` and option
// that README.md and docs/**/*.md name in code exists in the CLI (as its --help lists it), every
// number in docs/performance.md names the command that measured it, and the generated man page
// names every subcommand and option and renders without groff warnings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

// Subcommand -> its options ("-o", "--out"); "" holds the main program's.
using Cli = std::map<std::string, std::set<std::string>>;

// The option names of one --help text: lines "  -o,--out TEXT ..." (CLI11's layout).
std::set<std::string> help_options(const std::string& help) {
  std::set<std::string> names;
  std::istringstream in(help);
  std::string line;
  static const std::regex name(R"((^|,)(--?[A-Za-z0-9][A-Za-z0-9_-]*))");
  while (std::getline(in, line)) {
    if (line.rfind("  -", 0) != 0) continue;
    const std::string head = line.substr(2, line.find(' ', 2) - 2);
    for (std::sregex_iterator it(head.begin(), head.end(), name), end; it != end; ++it) names.insert((*it)[2]);
  }
  return names;
}

// The CLI as its --help texts describe it (the top level's "Subcommands:" list, then each one's).
const Cli& cli() {
  static const Cli table = [] {
    Cli t;
    const auto top = wsi::test::run_wsi({"--help"});
    if (top.code != 0) throw std::runtime_error("wsi-heatmap --help failed: " + top.err);
    t[""] = help_options(top.out);
    std::istringstream lines(top.out.substr(top.out.find("Subcommands:")));
    std::string line, sub;
    std::getline(lines, line);
    // Each --help starts LibTorch (about a second), so they run side by side.
    std::vector<std::pair<std::string, std::future<wsi::test::CliResult>>> helps;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      if (!(words >> sub)) continue;
      helps.emplace_back(sub, std::async(std::launch::async, [sub] { return wsi::test::run_wsi({sub, "--help"}); }));
    }
    for (auto& [name, help] : helps) {
      const auto h = help.get();
      if (h.code != 0) throw std::runtime_error("wsi-heatmap " + name + " --help failed: " + h.err);
      t[name] = help_options(h.out);
    }
    return t;
  }();
  return table;
}

std::string unroff(const std::string& s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '-') {
      r += '-';
      ++i;
    } else {
      r += s[i];
    }
  }
  return r;
}

// The CLI as the generated man page describes it: ".SS "wsi-heatmap SUB"" sections whose option
// entries start "\fB-o, --out\fR" (ManPage.NamesEverySubcommandAndEachOfItsOptions checks the
// page against --help; this is the quick source for the documentation checks).
Cli cli_of_man_page(const std::string& page) {
  Cli t{{"", {"-h", "--help", "--version"}}};
  std::istringstream in(page);
  std::string line, sub;
  static const std::regex heading(R"re(^\.SS "wsi-heatmap (.+)"$)re");
  static const std::regex names(R"(^\\fB(-[^\\]*)\\fR)");
  std::smatch m;
  while (std::getline(in, line)) {
    const std::string text = unroff(line);
    if (std::regex_match(text, m, heading)) {
      sub = m[1];
      t[sub];
    } else if (line.rfind(".SH", 0) == 0) {
      sub.clear();
    } else if (!sub.empty() && std::regex_search(text, m, names)) {
      std::istringstream list(m[1].str());
      std::string name;
      while (std::getline(list, name, ',')) t[sub].insert(name.substr(name.find_first_not_of(' ')));
    }
  }
  return t;
}

struct CodeText {
  int line;
  std::string text;
  bool block;  // a fenced block's (logical) line, else an inline code span
};

// The code of a Markdown text: fenced blocks' lines (a trailing backslash joins the next one) and
// inline code spans (which may run over a line break), each with the line it starts on.
std::vector<CodeText> code_of(const std::string& markdown) {
  std::vector<CodeText> code;
  std::istringstream in(markdown);
  std::string line, prose, pending;
  int number = 0, pending_line = 0;
  bool fenced = false;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(' ') != std::string::npos && line.substr(line.find_first_not_of(' ')).rfind("```", 0) == 0) {
      fenced = !fenced;
      prose += "\n";
      continue;
    }
    if (!fenced) {
      prose += line + "\n";
      continue;
    }
    prose += "\n";
    if (pending.empty()) pending_line = number;
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    code.push_back({pending_line, pending + line, true});
    pending.clear();
  }
  static const std::regex span("`([^`]+)`");
  for (std::sregex_iterator it(prose.begin(), prose.end(), span), end; it != end; ++it) {
    const auto at = static_cast<std::size_t>(it->position(0));
    const int at_line = 1 + static_cast<int>(std::count(prose.begin(), prose.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    std::string text = (*it)[1];
    std::replace(text.begin(), text.end(), '\n', ' ');
    code.push_back({at_line, text, false});
  }
  return code;
}

std::vector<std::string> options_in(const std::string& text) {
  static const std::regex option(R"((^|[\s\[(|])(--?[A-Za-z][A-Za-z0-9_-]*))");
  std::vector<std::string> found;
  for (std::sregex_iterator it(text.begin(), text.end(), option), end; it != end; ++it) found.push_back((*it)[2]);
  return found;
}

bool any_subcommand_has(const Cli& c, const std::string& option) {
  for (const auto& [sub, options] : c)
    if (options.count(option)) return true;
  return false;
}

// One line per problem: "FILE:LINE: what".
std::vector<std::string> check_commands(const Cli& c, const std::string& file, const std::string& markdown) {
  std::vector<std::string> problems;
  const auto where = [&](int line) { return file + ":" + std::to_string(line) + ": "; };
  static const std::regex program(R"((^|[\s/"'(])wsi-heatmap(?=\s|$))");
  for (const CodeText& code : code_of(markdown)) {
    std::string text = code.text;
    if (code.block) text = text.substr(0, text.find(" #"));  // a shell comment
    std::vector<std::size_t> starts;
    for (std::sregex_iterator it(text.begin(), text.end(), program), end; it != end; ++it)
      starts.push_back(static_cast<std::size_t>(it->position(0) + it->length(0)));
    if (starts.empty()) {
      // `--stride 48` or `batch --extract`: options of some subcommand, or of the one named first.
      std::istringstream words(text);
      std::string first, second;
      words >> first >> second;
      if (!first.empty() && first[0] == '-') {
        for (const auto& o : options_in(text))
          if (!any_subcommand_has(c, o)) problems.push_back(where(code.line) + o + " is not an option of any wsi-heatmap subcommand");
      } else if (c.count(first) && !first.empty() && !second.empty() && second[0] == '-') {
        for (const auto& o : options_in(text.substr(first.size())))
          if (!c.at(first).count(o)) problems.push_back(where(code.line) + o + " is not an option of wsi-heatmap " + first);
      }
      continue;
    }
    for (std::size_t i = 0; i < starts.size(); ++i) {
      std::string segment = text.substr(starts[i], i + 1 < starts.size() ? starts[i + 1] - starts[i] : std::string::npos);
      segment = segment.substr(0, segment.find_first_of("|;&>\")"));
      std::istringstream words(segment);
      std::string first;
      words >> first;
      std::string sub = "heatmap";  // `wsi-heatmap SLIDE ...`
      if (first.empty()) continue;
      if (first[0] == '-') sub = "";
      else if (std::regex_match(first, std::regex("[a-z][a-z-]*"))) {
        if (!c.count(first)) {
          problems.push_back(where(code.line) + "wsi-heatmap " + first + " is not a subcommand");
          continue;
        }
        sub = first;
      }
      for (const auto& o : options_in(segment))
        if (!c.at(sub).count(o))
          problems.push_back(where(code.line) + o + " is not an option of wsi-heatmap" + (sub.empty() ? "" : " " + sub));
    }
  }
  return problems;
}

// docs/performance.md's convention: a line with a digit (outside code spans, headings and code
// blocks) must be followed, before the next heading, by "Measured by:" naming a command in a code
// span; a script of this tree named there first must exist.
std::vector<std::string> check_measured(const std::string& file, const std::string& markdown, const fs::path& root) {
  std::vector<std::string> problems;
  std::istringstream in(markdown);
  std::string line;
  int number = 0, unmeasured = 0;
  bool fenced = false;
  static const std::regex span("`([^`]*)`");
  const auto unclosed = [&] {
    if (unmeasured)
      problems.push_back(file + ":" + std::to_string(unmeasured) +
                         ": a number with no \"Measured by: `COMMAND`\" line after it in its section");
    unmeasured = 0;
  };
  while (std::getline(in, line)) {
    ++number;
    const auto text_start = line.find_first_not_of(' ');
    const std::string text = text_start == std::string::npos ? "" : line.substr(text_start);
    if (text.rfind("```", 0) == 0) fenced = !fenced;
    if (fenced) continue;
    if (text.rfind("#", 0) == 0) {
      unclosed();
      continue;
    }
    if (text.rfind("Measured by:", 0) == 0) {
      std::smatch m;
      if (!std::regex_search(text, m, span)) {
        problems.push_back(file + ":" + std::to_string(number) + ": \"Measured by:\" names no command in a code span");
        continue;
      }
      std::istringstream words(m[1].str());
      std::string word;
      while (words >> word && (word.find('=') != std::string::npos || word == "/usr/bin/time" || word[0] == '-')) {
      }
      const bool in_tree = word.find('/') != std::string::npos && word[0] != '/' && word[0] != '.' &&
                           word.rfind("build/", 0) != 0;
      if (in_tree && !fs::exists(root / word))
        problems.push_back(file + ":" + std::to_string(number) + ": " + word + " does not exist in the source tree");
      unmeasured = 0;
      continue;
    }
    const std::string prose = std::regex_replace(text, span, "");
    if (!unmeasured && prose.find_first_of("0123456789") != std::string::npos) unmeasured = number;
  }
  unclosed();
  return problems;
}

std::vector<fs::path> documentation() {
  const fs::path root(WSI_SOURCE_DIR);
  std::vector<fs::path> files{root / "README.md"};
  for (const auto& e : fs::recursive_directory_iterator(root / "docs"))
    if (e.is_regular_file() && e.path().extension() == ".md") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

const Cli kFake = {{"", {"--help", "--version"}},
                   {"heatmap", {"--model", "-o", "--out"}},
                   {"batch", {"--extract", "--model", "-o"}}};

}  // namespace

TEST(DocsCheck, NamesFileLineAndTheUnknownOptionOfTheSubcommandOnThatLine) {
  const std::string md = "# T\n\nRun `wsi-heatmap batch dir -o out --extract --modle m.pt`.\n\n```sh\n"
                         "build/wsi-heatmap slide.svs -o out \\\n    --extract\nwsi-heatmap bogus x\n```\n";
  EXPECT_EQ(joined(check_commands(kFake, "docs/x.md", md)),
            "docs/x.md:6: --extract is not an option of wsi-heatmap heatmap\n"
            "docs/x.md:8: wsi-heatmap bogus is not a subcommand\n"
            "docs/x.md:3: --modle is not an option of wsi-heatmap batch\n");
}

TEST(DocsCheck, LoneOptionsNeedSomeSubcommandAndOtherProgramsAreNotChecked) {
  const std::string md = "`--model` and `--extract` fine, `--nope` not; `batch --model` fine, `heatmap --extract` not;\n"
                         "`cmake --preset ci` and `ctest -L docs` are other programs'.\n";
  EXPECT_EQ(joined(check_commands(kFake, "README.md", md)),
            "README.md:1: --nope is not an option of any wsi-heatmap subcommand\n"
            "README.md:1: --extract is not an option of wsi-heatmap heatmap\n");
}

TEST(DocsCheck, NumbersWithoutAMeasuredByLineInTheirSectionAreNamed) {
  const fs::path root(WSI_SOURCE_DIR);
  const std::string md = "# P\n\nNo digits here.\n\n## A\n\n12 patches/s\n\nMeasured by: `benchmarks/feed.sh`\n\n"
                         "## B\n\n| 3 | 4 |\n\n## C\n\n5 s\n\nMeasured by: `benchmarks/no-such.sh`\n\n"
                         "## D\n\n`7` in code\n\nMeasured by: nothing in code\n";
  EXPECT_EQ(joined(check_measured("docs/performance.md", md, root)),
            "docs/performance.md:13: a number with no \"Measured by: `COMMAND`\" line after it in its section\n"
            "docs/performance.md:19: benchmarks/no-such.sh does not exist in the source tree\n"
            "docs/performance.md:25: \"Measured by:\" names no command in a code span\n");
}

TEST(Docs, EveryCommandAndOptionNamedInTheDocsExistsInTheCli) {
  const Cli cli = cli_of_man_page(wsi::test::slurp(WSI_MAN_PAGE));
  ASSERT_GE(cli.size(), 12u);  // the main program and its 11 subcommands
  ASSERT_TRUE(cli.at("heatmap").count("--model"));
  const fs::path root(WSI_SOURCE_DIR);
  std::vector<std::string> problems;
  int files = 0;
  for (const fs::path& f : documentation()) {
    ++files;
    const auto p = check_commands(cli, fs::relative(f, root).string(), wsi::test::slurp(f));
    problems.insert(problems.end(), p.begin(), p.end());
  }
  EXPECT_GE(files, 15);
  for (const auto& p : problems) ADD_FAILURE() << p;  // one line each: FILE:LINE: what
}

TEST(Docs, EveryNumberInPerformanceNamesTheCommandThatMeasuredIt) {
  const fs::path root(WSI_SOURCE_DIR);
  const std::string perf = wsi::test::slurp(root / "docs/performance.md");
  ASSERT_NE(perf.find("Measured by: `"), std::string::npos);
  for (const auto& p : check_measured("docs/performance.md", perf, root)) ADD_FAILURE() << p;
}

TEST(ManPage, NamesEverySubcommandAndEachOfItsOptions) {
  // The page's own reading (what Docs.* checks against) is the --help options, subcommand by subcommand.
  EXPECT_EQ(cli_of_man_page(wsi::test::slurp(WSI_MAN_PAGE)), cli());
  const std::string page = wsi::test::slurp(WSI_MAN_PAGE);
  ASSERT_FALSE(page.empty()) << WSI_MAN_PAGE << " was not built";
  const auto roff = [](std::string s) {
    std::string r;
    for (char ch : s) r += ch == '-' ? std::string("\\-") : std::string(1, ch);
    return r;
  };
  for (const auto& [sub, options] : cli()) {
    if (sub.empty()) continue;
    const std::string heading = ".SS \"" + roff("wsi-heatmap " + sub) + "\"\n";
    const auto at = page.find(heading);
    ASSERT_NE(at, std::string::npos) << "no section for " << sub;
    const std::string section = page.substr(at, page.find("\n.S", at + 1) - at);
    for (const auto& o : options) {
      if (o == "-h" || o == "--help") continue;  // said once for all in DESCRIPTION
      const std::regex named("(^|[B ,\n])" + std::regex_replace(roff(o), std::regex(R"(\\)"), R"(\\)") + "([\\\\, \n]|$)");
      EXPECT_TRUE(std::regex_search(section, named)) << sub << ": " << o;
    }
  }
}

TEST(ManPage, IsWhatTheCliWritesNow) {
  const auto r = wsi::test::run_wsi({"man-page"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, wsi::test::slurp(WSI_MAN_PAGE));
}

TEST(ManPage, RendersWithoutGroffWarnings) {
  if (std::system("command -v groff >/dev/null 2>&1") != 0) {
    WSI_SKIP_MISSING() << "groff is not installed (Debian's groff-base; tools/setup.sh test installs it)";
  }
  wsi::test::ScratchDir dir;
  const std::string cmd = "groff -man -Tutf8 -ww -z " + wsi::test::shell_quote(WSI_MAN_PAGE) + " >" +
                          wsi::test::shell_quote((dir / "out").string()) + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(wsi::test::slurp(dir / "out"), "");
  // And it says something: the rendered text holds every subcommand's heading.
  const std::string text_cmd = "groff -man -Tutf8 -P-cbu " + wsi::test::shell_quote(WSI_MAN_PAGE) + " >" +
                               wsi::test::shell_quote((dir / "page").string()) + " 2>/dev/null";
  ASSERT_EQ(std::system(text_cmd.c_str()), 0);
  const std::string text = wsi::test::slurp(dir / "page");
  for (const auto& [sub, options] : cli_of_man_page(wsi::test::slurp(WSI_MAN_PAGE))) {
    if (sub.empty()) continue;
    EXPECT_TRUE(std::regex_search(text, std::regex("wsi.{1,3}heatmap " + sub + "\n"))) << sub;
  }
}
