// cli.h: what the command-line tools share (mi-stat, mi-reserve): messages
// on stderr prefixed with the tool's name, the exit by exception (a message
// printed first, main returns the code), the parse of the command line with
// Boost.Program_options, and --help / --version.
// Header-only: each tool is one program, built on its own (tools/*/meson.build).
#pragma once

#include <boost/program_options.hpp>
#include <exception>
#include <iostream>
#include <string>

namespace cli {

namespace po = boost::program_options;

// Thrown after the message is printed; main returns the code.
struct Exit {
  int code;
};

// "TOOL: msg" and "TOOL: warning: msg" on stderr.
inline void say(const char* tool, const std::string& msg) { std::cerr << tool << ": " << msg << "\n"; }
inline void say_warning(const char* tool, const std::string& msg) { say(tool, "warning: " + msg); }

// A wrong command line: the message, a pointer to --help, then Exit{code}.
[[noreturn]] inline void usage_error(const char* tool, int code, const std::string& msg) {
  say(tool, msg + " (" + tool + " --help lists the options)");
  throw Exit{code};
}

// The command line as options of `desc` and the `positional` ones; no
// abbreviations (--page could be --pages or --page-size; a later option
// must not change what an old command line means). A malformed one is a
// usage error (exit `usage_code`).
inline po::variables_map parse_command_line(int argc, char** argv, const po::options_description& desc,
                                            const po::positional_options_description& positional, const char* tool,
                                            int usage_code) {
  po::variables_map vm;
  try {
    const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).style(style).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error(tool, usage_code, e.what());
  }
  return vm;
}

// --help prints `help`, --version prints `version` (a line): either ends the
// program with `ok_code`.
inline void help_or_version(const po::variables_map& vm, const char* help, const std::string& version, int ok_code) {
  if (vm.count("help") != 0) {
    std::cout << help;
    throw Exit{ok_code};
  }
  if (vm.count("version") != 0) {
    std::cout << version << "\n";
    throw Exit{ok_code};
  }
}

// main's body: run(), the code of an Exit, or an unexpected exception said
// as `what_prefix` + its text and `failed_code`.
template <class Run>
int run_main(const char* tool, Run run, int failed_code, const char* what_prefix) {
  try {
    return run();
  } catch (const Exit& e) {
    return e.code;
  } catch (const std::exception& e) {
    say(tool, std::string(what_prefix) + e.what());
    return failed_code;
  }
}

}  // namespace cli
