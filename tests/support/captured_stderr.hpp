// tests/support/captured_stderr.hpp - what a piece of code writes to standard error (fd 2), line
// by line: for tests of log sinks.
//
// `stderr_lines_of(body)` points fd 2 at a temporary file while `body` runs, then restores it.
// Not for concurrent use: fd 2 is the process's.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "tests/support/temp_dir.hpp"

namespace shardflow::testing {

/// Runs `body` with standard error in a file; returns the lines written, without their newlines.
template <class F>
std::vector<std::string> stderr_lines_of(F body) {
  temp_dir dir;
  std::filesystem::create_directories(dir.path);
  const auto path = dir.path / "stderr";
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (file < 0)
    throw std::runtime_error("cannot create " + path.string());
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  ::close(file);
  body();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::ifstream in{path};
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

} // namespace shardflow::testing
