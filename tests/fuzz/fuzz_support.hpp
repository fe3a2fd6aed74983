// What every fuzz target checks: the parsers' contract is that bad input throws wsi::Error (or a
// subclass) with a message that names the file, never crashes and never throws anything else.
// A broken promise prints what broke and aborts, which libFuzzer records as a finding and saves
// the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <typeinfo>

#include "wsi/error.hpp"

namespace wsi::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

// Runs `parse`; true when it returned, false when it threw a wsi::Error whose message is non-empty
// and mentions `source`. std::bad_alloc is a finding as well: an input is at most a few KB
// (run.sh's -max_len), so a parser that asks for gigabytes took a size from the input unchecked
// (and under ASan such a request usually aborts before it could throw).
template <typename F>
bool parses(const char* source, F&& parse) {
  try {
    parse();
    return true;
  } catch (const wsi::Error& e) {
    const char* m = e.what();
    if (m == nullptr || m[0] == '\0') finding(std::string(typeid(e).name()) + " with an empty message");
    if (std::strstr(m, source) == nullptr)
      finding(std::string(typeid(e).name()) + " whose message does not name the file: " + m);
    return false;
  } catch (const std::bad_alloc& e) {
    finding(std::string("std::bad_alloc: ") + e.what());
  } catch (const std::exception& e) {
    finding(std::string("an exception outside wsi::Error: ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    finding("an exception that is not a std::exception");
  }
}

// For what must not throw at all on a parser's result (rasterising into a valid window, a
// round trip through the writer).
template <typename F>
void never_throws(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    finding(std::string(what) + " threw " + typeid(e).name() + ": " + e.what());
  } catch (...) {
    finding(std::string(what) + " threw something that is not a std::exception");
  }
}

}  // namespace wsi::fuzz
