#pragma once
// A folder of one test's own under the temporary directory, removed when the test ends: a fixed
// name in /tmp may belong to another user's run, or to an earlier run of this one.
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace sendq::test_support {

struct scratch_dir {
  std::string path;
  scratch_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "sendq-test-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed for " + t);
    path = t;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

}  // namespace sendq::test_support
