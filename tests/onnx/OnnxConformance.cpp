//===- tests/onnx/OnnxConformance.cpp - ONNX backend-test conformance -----===//
//
// Runs every case of the ONNX backend test data (node, pytorch-converted,
// pytorch-operator, simple) through import -> compile -> run on the
// reference backend and compares each output with the expected one (rtol
// 1e-3, atol 1e-7, as the ONNX backend tests; NaNs compare equal). Writes a
// JSON report (per case: passed / failed with a reason / unsupported with
// the op list), prints one summary line per folder, and fails when a case
// listed in the expected-passes file does not pass. `--update` rewrites that
// list from this run.
//
// Each case runs in a forked child with a time limit, so a crash or a hang
// in one case is recorded as that case's failure and the run goes on.
//
//===----------------------------------------------------------------------===//
#include "OnnxTensor.h"
#include "kiln/kiln.h"
#include "kiln/onnx.h"

#include "onnx/onnx_pb.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char *kUsage = R"(onnx-conformance - ONNX backend-test data through kiln

Usage: onnx-conformance [options]
  --data DIR         test data root (default /usr/share/libonnx-testdata/data)
  --folders A,B      folders under DIR (default node,pytorch-converted,
                     pytorch-operator,simple)
  --filter TEXT      only cases whose name contains TEXT
  --expected FILE    expected passes ("folder/case" per line); a listed case
                     that does not pass fails the run
  --update           rewrite --expected from this run's passes
  --report FILE      write the JSON report here
  --jobs N           cases run in parallel (default 2)
  --timeout S        seconds per case (default 60)
  --verbose          print every case's result
)";

struct Case {
  std::string folder, name;
  fs::path dir;
  std::string id() const { return folder + "/" + name; }
};

/// Result of one case as JSON: {"case", "status", "reason"?, "ops"?}.
json result(const Case &c, const std::string &status,
            const std::string &reason = "") {
  json j = {{"case", c.id()}, {"status", status}};
  if (!reason.empty())
    j["reason"] = reason;
  return j;
}

/// Files `prefix_N.pb` of a data set, ordered by N.
std::vector<fs::path> numbered(const fs::path &dir, const std::string &prefix) {
  std::vector<std::pair<int, fs::path>> found;
  if (!fs::is_directory(dir))
    return {};
  for (const auto &e : fs::directory_iterator(dir)) {
    std::string f = e.path().filename().string();
    if (f.rfind(prefix + "_", 0) == 0 && e.path().extension() == ".pb")
      found.emplace_back(std::atoi(f.c_str() + prefix.size() + 1), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto &p : found)
    out.push_back(p.second);
  return out;
}

/// First differing element, or "" when `got` matches `want`.
std::string compare(const kiln::Tensor &got, const kiln::Tensor &want) {
  if (got.dtype() != want.dtype())
    return std::string("dtype ") + kiln::dtypeName(got.dtype()) +
           ", expected " + kiln::dtypeName(want.dtype());
  if (got.shape() != want.shape())
    return "shape " + kiln::shapeToString(got.shape()) + ", expected " +
           kiln::shapeToString(want.shape());
  auto g = got.toDoubles(), w = want.toDoubles();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok = (std::isnan(g[i]) && std::isnan(w[i])) || g[i] == w[i] ||
              std::abs(g[i] - w[i]) <= 1e-7 + 1e-3 * std::abs(w[i]);
    if (!ok) {
      if (first < 0)
        first = static_cast<int64_t>(i);
      ++bad;
    }
  }
  if (!bad)
    return "";
  std::ostringstream os;
  os << bad << " of " << g.size() << " values differ; first at " << first
     << ": got " << g[first] << ", expected " << w[first];
  return os.str();
}

/// Import, compile, run and compare one case (in the child process).
json runCase(const Case &c) {
  fs::path modelPath = c.dir / "model.onnx";
  fs::path dataDir = c.dir / "test_data_set_0";
  ::onnx::ModelProto model;
  {
    std::ifstream in(modelPath, std::ios::binary);
    if (!in || !model.ParseFromIstream(&in))
      return result(c, "failed", "cannot read model.onnx");
  }
  std::set<std::string> initializers;
  for (const auto &t : model.graph().initializer())
    initializers.insert(t.name());
  std::vector<std::string> inputNames, outputNames;
  for (const auto &i : model.graph().input())
    if (!initializers.count(i.name()))
      inputNames.push_back(i.name());
  for (const auto &o : model.graph().output())
    outputNames.push_back(o.name());

  kiln::onnx::ImportOptions options;
  kiln::TensorMap inputs;
  auto inputFiles = numbered(dataDir, "input");
  if (inputFiles.size() > inputNames.size())
    return result(c, "failed", "more input files than graph inputs");
  for (size_t i = 0; i < inputFiles.size(); ++i) {
    auto t = kiln::readOnnxTensorProto(inputFiles[i].string());
    if (!t)
      return result(c, "unsupported", "input data: " + t.status().message());
    inputs[inputNames[i]] = *t;
    options.setInputShape(inputNames[i], t->shape());
    options.setInputValue(inputNames[i], *t);
  }
  std::vector<kiln::Tensor> expected;
  for (const auto &f : numbered(dataDir, "output")) {
    auto t = kiln::readOnnxTensorProto(f.string());
    if (!t)
      return result(c, "unsupported", "output data: " + t.status().message());
    expected.push_back(*t);
  }
  if (expected.size() > outputNames.size())
    return result(c, "failed", "more output files than graph outputs");

  auto module = kiln::onnx::importModel(modelPath.string(), options);
  if (!module) {
    const std::string &msg = module.status().message();
    if (msg.rfind("unsupported ONNX ops", 0) == 0) {
      json j = result(c, "unsupported", msg);
      json ops = json::array();
      std::istringstream lines(msg);
      std::string line;
      std::getline(lines, line);
      while (std::getline(lines, line)) {
        auto start = line.find_first_not_of(' ');
        auto end = line.find(" (opset");
        if (start != std::string::npos && end != std::string::npos)
          ops.push_back(line.substr(start, end - start));
      }
      j["ops"] = ops;
      return j;
    }
    return result(c, "failed", "import: " + msg);
  }
  auto exe = kiln::compile(*module);
  if (!exe)
    return result(c, "failed", "compile: " + exe.status().message());
  auto outputs = exe->run(inputs);
  if (!outputs)
    return result(c, "failed", "run: " + outputs.status().message());
  for (size_t i = 0; i < expected.size(); ++i) {
    auto it = outputs->find(outputNames[i]);
    if (it == outputs->end())
      return result(c, "failed", "no output '" + outputNames[i] + "'");
    std::string diff = compare(it->second, expected[i]);
    if (!diff.empty())
      return result(c, "failed", "output '" + outputNames[i] + "': " + diff);
  }
  return result(c, "passed");
}

struct Running {
  Case c;
  pid_t pid;
  int fd;
  std::string out;
  std::chrono::steady_clock::time_point start;
};

/// Forks a child that runs the case and writes its JSON to a pipe.
Running start(const Case &c, bool verbose) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    std::exit(2);
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (!verbose) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 2);
    }
    std::string text;
    try {
      text = runCase(c).dump();
    } catch (const std::exception &e) {
      text = result(c, "failed", std::string("exception: ") + e.what()).dump();
    }
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = write(fds[1], text.data() + off, text.size() - off);
      if (n <= 0)
        break;
      off += n;
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  return {c, pid, fds[0], "", std::chrono::steady_clock::now()};
}

std::vector<std::string> splitComma(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

} // namespace

int main(int argc, char **argv) {
  std::string dataRoot = "/usr/share/libonnx-testdata/data";
  std::string folders = "node,pytorch-converted,pytorch-operator,simple";
  std::string filter, expectedPath, reportPath;
  bool update = false, verbose = false;
  int jobs = 2;
  double timeout = 60;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "onnx-conformance: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data")
      dataRoot = next();
    else if (a == "--folders")
      folders = next();
    else if (a == "--filter")
      filter = next();
    else if (a == "--expected")
      expectedPath = next();
    else if (a == "--report")
      reportPath = next();
    else if (a == "--jobs")
      jobs = std::max(1, std::atoi(next().c_str()));
    else if (a == "--timeout")
      timeout = std::atof(next().c_str());
    else if (a == "--update")
      update = true;
    else if (a == "--verbose")
      verbose = true;
    else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "onnx-conformance: unknown argument '" << a << "'\n"
                << kUsage;
      return 2;
    }
  }
  if (update && expectedPath.empty()) {
    std::cerr << "onnx-conformance: --update needs --expected FILE\n";
    return 2;
  }

  std::vector<Case> cases;
  std::vector<std::string> folderList = splitComma(folders);
  for (const auto &folder : folderList) {
    fs::path dir = fs::path(dataRoot) / folder;
    if (!fs::is_directory(dir)) {
      std::cerr << "onnx-conformance: no test data at " << dir << "\n";
      return 2;
    }
    std::vector<Case> found;
    for (const auto &e : fs::directory_iterator(dir))
      if (fs::exists(e.path() / "model.onnx")) {
        std::string name = e.path().filename().string();
        if (filter.empty() || name.find(filter) != std::string::npos)
          found.push_back({folder, name, e.path()});
      }
    std::sort(found.begin(), found.end(),
              [](const Case &a, const Case &b) { return a.name < b.name; });
    cases.insert(cases.end(), found.begin(), found.end());
  }

  // Run the cases, `jobs` children at a time.
  std::map<std::string, json> results;
  std::vector<Running> running;
  size_t next = 0;
  while (next < cases.size() || !running.empty()) {
    while (running.size() < static_cast<size_t>(jobs) && next < cases.size())
      running.push_back(start(cases[next++], verbose));
    usleep(2000);
    for (size_t i = 0; i < running.size();) {
      Running &r = running[i];
      char buf[4096];
      ssize_t n;
      while ((n = read(r.fd, buf, sizeof buf)) > 0)
        r.out.append(buf, n);
      int status = 0;
      pid_t done = waitpid(r.pid, &status, WNOHANG);
      double elapsed = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - r.start)
                           .count();
      json j;
      if (done == r.pid) {
        while ((n = read(r.fd, buf, sizeof buf)) > 0)
          r.out.append(buf, n);
        if (WIFSIGNALED(status))
          j = result(r.c, "failed",
                     std::string("crashed: ") + strsignal(WTERMSIG(status)));
        else {
          try {
            j = json::parse(r.out);
          } catch (const std::exception &) {
            j = result(r.c, "failed",
                       "no result (exit status " +
                           std::to_string(WEXITSTATUS(status)) + ")");
          }
        }
      } else if (elapsed > timeout) {
        kill(r.pid, SIGKILL);
        waitpid(r.pid, &status, 0);
        j = result(r.c, "failed",
                   "timed out after " + std::to_string(int(timeout)) + " s");
      } else {
        ++i;
        continue;
      }
      close(r.fd);
      j["seconds"] = std::round(elapsed * 1000) / 1000;
      if (verbose)
        std::cout << j.dump() << std::endl;
      results[r.c.id()] = j;
      running.erase(running.begin() + i);
    }
  }

  // Summary per folder.
  json report = {{"cases", json::array()}, {"summary", json::object()}};
  for (const auto &folder : folderList) {
    int passed = 0, failed = 0, unsupported = 0, total = 0;
    for (const auto &c : cases) {
      if (c.folder != folder)
        continue;
      const json &j = results[c.id()];
      report["cases"].push_back(j);
      ++total;
      std::string s = j["status"];
      (s == "passed" ? passed : s == "unsupported" ? unsupported : failed)++;
    }
    double pct = total ? 100.0 * passed / total : 0.0;
    char line[256];
    std::snprintf(line, sizeof line,
                  "%-18s passed %4d  failed %4d  unsupported %4d  total %4d  "
                  "(%.1f%% pass)",
                  folder.c_str(), passed, failed, unsupported, total, pct);
    std::cout << line << "\n";
    report["summary"][folder] = {{"passed", passed},
                                 {"failed", failed},
                                 {"unsupported", unsupported},
                                 {"total", total},
                                 {"pass_percent", pct}};
  }
  if (!reportPath.empty()) {
    std::ofstream out(reportPath);
    out << report.dump(1) << "\n";
    if (!out) {
      std::cerr << "onnx-conformance: cannot write " << reportPath << "\n";
      return 2;
    }
  }

  if (update) {
    std::ofstream out(expectedPath);
    out << "# Cases of the ONNX backend test data that kiln passes; the\n"
           "# conformance test fails when one of them stops passing.\n"
           "# Regenerate with: onnx-conformance --expected FILE --update\n";
    for (const auto &c : cases)
      if (results[c.id()]["status"] == "passed")
        out << c.id() << "\n";
    std::cout << "wrote " << expectedPath << "\n";
    return 0;
  }
  if (!expectedPath.empty()) {
    std::ifstream in(expectedPath);
    if (!in) {
      std::cerr << "onnx-conformance: cannot read " << expectedPath << "\n";
      return 2;
    }
    std::string line;
    int regressions = 0;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#')
        continue;
      auto it = results.find(line);
      if (it == results.end()) {
        if (filter.empty()) {
          std::cout << "REGRESSION " << line << ": case not found\n";
          ++regressions;
        }
        continue;
      }
      if (it->second["status"] != "passed") {
        std::cout << "REGRESSION " << line << ": "
                  << it->second.value("reason", std::string()) << "\n";
        ++regressions;
      }
    }
    if (regressions) {
      std::cout << regressions << " expected pass(es) regressed\n";
      return 1;
    }
  }
  return 0;
}
