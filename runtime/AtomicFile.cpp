//===- AtomicFile.cpp - Writing a file so that a failure loses nothing ---===//
#include "AtomicFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace kiln {

Status writeFileAtomically(const std::string &what, const std::string &path,
                           const std::function<void(std::ostream &)> &write) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status existing = fs::status(path, ec);
  bool inPlace = fs::exists(existing) && !fs::is_regular_file(existing);
  std::string target =
      inPlace ? path : path + ".tmp-" + std::to_string(::getpid());
  auto fail = [&](const std::string &problem, int err) {
    if (!inPlace)
      std::remove(target.c_str());
    std::string message = what + " '" + path + "': " + problem;
    if (err)
      message += std::string(": ") + std::strerror(err);
    return Status::error(message);
  };
  errno = 0;
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  if (!out)
    return fail("cannot open for writing", errno);
  write(out);
  int err = errno;
  out.close();
  if (!out)
    return fail("write failed", err ? err : errno);
  if (!inPlace && std::rename(target.c_str(), path.c_str()) != 0)
    return fail("cannot replace it with the written file", errno);
  return Status::ok();
}

} // namespace kiln
