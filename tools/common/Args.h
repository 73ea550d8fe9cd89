//===- tools/common/Args.h - Command-line parsing for the kiln tools ------===//
//
// A small parser shared by kilnc and kiln-run (kiln-run links no MLIR, so it
// cannot use llvm::cl). Accepts `--flag`, `--key=value`, `--key value`, `-o
// FILE` and positionals; unknown options are errors with a usage hint.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_COMMON_ARGS_H
#define KILN_TOOLS_COMMON_ARGS_H

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kiln::tools {

class Args {
public:
  /// `valued`: options that take a value; `flags`: options that do not;
  /// `repeated`: valued options that may be given more than once.
  Args(std::string tool, std::set<std::string> valued,
       std::set<std::string> flags, std::set<std::string> repeated = {})
      : tool_(std::move(tool)), valued_(std::move(valued)),
        flags_(std::move(flags)), repeated_(std::move(repeated)) {}

  /// Parses argv; on error returns false and sets error().
  bool parse(int argc, char **argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--") {
        for (++i; i < argc; ++i)
          positional_.push_back(argv[i]);
        break;
      }
      if (a.size() < 2 || a[0] != '-') {
        positional_.push_back(a);
        continue;
      }
      std::string key = a, value;
      bool hasValue = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        key = a.substr(0, eq);
        value = a.substr(eq + 1);
        hasValue = true;
      }
      if (flags_.count(key)) {
        if (hasValue)
          return fail("option " + key + " takes no value");
        values_[key].push_back("");
        continue;
      }
      if (!valued_.count(key) && !repeated_.count(key))
        return fail("unknown option '" + key + "'");
      if (!hasValue) {
        if (i + 1 >= argc)
          return fail("option " + key + " needs a value");
        value = argv[++i];
      }
      if (!repeated_.count(key) && values_.count(key))
        return fail("option " + key + " given twice");
      values_[key].push_back(value);
    }
    return true;
  }

  bool has(const std::string &key) const { return values_.count(key) != 0; }
  std::string get(const std::string &key, std::string dflt = "") const {
    auto it = values_.find(key);
    return it == values_.end() ? dflt : it->second.front();
  }
  std::vector<std::string> all(const std::string &key) const {
    auto it = values_.find(key);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  /// Integer option; sets error() and returns nullopt when not a number.
  std::optional<long long> getInt(const std::string &key, long long dflt) {
    if (!has(key))
      return dflt;
    std::string v = get(key);
    char *end = nullptr;
    errno = 0;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (errno == ERANGE) {
      fail("option " + key + " is out of range: '" + v + "'");
      return std::nullopt;
    }
    if (v.empty() || *end != '\0') {
      fail("option " + key + " expects an integer, got '" + v + "'");
      return std::nullopt;
    }
    return n;
  }
  const std::vector<std::string> &positional() const { return positional_; }
  const std::string &error() const { return error_; }

  /// Prints "tool: error: msg" and a hint, returns exit code 2.
  int usageError(const std::string &msg) const {
    std::cerr << tool_ << ": error: " << msg << "\n"
              << "Run '" << tool_ << " --help' for usage.\n";
    return 2;
  }

private:
  bool fail(std::string msg) {
    error_ = std::move(msg);
    return false;
  }

  std::string tool_;
  std::set<std::string> valued_, flags_, repeated_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  std::string error_;
};

/// "pixels=1x3x224x224" -> ("pixels", {1, 3, 224, 224}); "x=" is rank 0.
/// nullopt when malformed (or a dim has more than 15 digits).
inline std::optional<std::pair<std::string, std::vector<int64_t>>>
parseInputShape(const std::string &spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0)
    return std::nullopt;
  std::vector<int64_t> dims;
  std::string rest = spec.substr(eq + 1);
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t x = rest.find('x', pos);
    std::string d = rest.substr(pos, x == std::string::npos ? x : x - pos);
    if (d.empty() || d.size() > 15 ||
        d.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    dims.push_back(std::stoll(d));
    if (x == std::string::npos)
      break;
    pos = x + 1;
    if (pos == rest.size())
      return std::nullopt;
  }
  return std::make_pair(spec.substr(0, eq), dims);
}

} // namespace kiln::tools

#endif // KILN_TOOLS_COMMON_ARGS_H
