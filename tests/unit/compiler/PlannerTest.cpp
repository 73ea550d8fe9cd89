//===- tests/unit/compiler/PlannerTest.cpp - Buffer planner invariants ----===//
#include "codegen/plan/BufferPlan.h"
#include "kiln/kiln.h"

#include <gtest/gtest.h>

#include <random>

using namespace kiln;

namespace {
bool timeOverlap(const LiveInterval &a, const LiveInterval &b) {
  return a.start <= b.end && b.start <= a.end;
}
bool byteOverlap(int64_t ao, int64_t ab, int64_t bo, int64_t bb) {
  return ao < bo + bb && bo < ao + ab;
}
} // namespace

TEST(Planner, RandomIntervalsNeverOverlapWhileLive) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<LiveInterval> iv(1 + rng() % 40);
    for (auto &li : iv) {
      li.bytes = 1 + rng() % 5000;
      li.start = rng() % 50;
      li.end = li.start + rng() % 10;
    }
    int64_t arena = assignArenaOffsets(iv);
    int64_t peak = 0;
    for (int64_t t = 0; t < 60; ++t) {
      int64_t live = 0;
      for (auto &li : iv)
        if (li.start <= t && t <= li.end)
          live += li.bytes;
      peak = std::max(peak, live);
    }
    EXPECT_GE(arena, peak);
    for (size_t i = 0; i < iv.size(); ++i) {
      EXPECT_EQ(iv[i].offset % kArenaAlignment, 0);
      EXPECT_LE(iv[i].offset + iv[i].bytes, arena);
      for (size_t j = i + 1; j < iv.size(); ++j)
        if (timeOverlap(iv[i], iv[j]))
          EXPECT_FALSE(
              byteOverlap(iv[i].offset, iv[i].bytes, iv[j].offset, iv[j].bytes))
              << "trial " << trial << " intervals " << i << " and " << j;
    }
  }
}

TEST(Planner, DisjointLifetimesShareBytes) {
  std::vector<LiveInterval> iv{{1000, 0, 1}, {1000, 2, 3}, {1000, 4, 5}};
  EXPECT_EQ(assignArenaOffsets(iv), 1024);
  EXPECT_EQ(iv[0].offset, iv[1].offset);
}

/// On real programs: arena buffers live at the same kernel never overlap,
/// except a reshape's result, which is a view of its arena source (same
/// offset, same bytes) and is checked as one buffer with it.
TEST(Planner, ZooProgramsRespectLiveness) {
  for (const char *name : {"mlp", "gpt", "bert", "vit", "resnet"}) {
    auto m = zoo::build(name);
    ASSERT_TRUE(m) << m.status().message();
    auto r = compileToProgram(*m);
    ASSERT_TRUE(r) << name << ": " << r.status().message();
    const Program &p = r->program;
    auto isArena = [&](int64_t id) {
      return p.buffers[id].kind == BufferKind::arena;
    };
    // Each arena buffer's view root: itself, or the root of the arena
    // buffer it is a reshape of.
    std::map<int64_t, int64_t> root;
    int views = 0;
    for (const KernelCall &k : p.kernels)
      for (int64_t id : k.outputs)
        if (isArena(id)) {
          root[id] = id;
          if (k.op == "reshape" && isArena(k.inputs[0])) {
            int64_t source = root.at(k.inputs[0]);
            EXPECT_EQ(p.buffers[id].offset, p.buffers[source].offset)
                << name << ": reshape " << id << " of " << source;
            EXPECT_EQ(p.buffers[id].byteSize(), p.buffers[source].byteSize());
            root[id] = source;
            ++views;
          }
        }
    // Live range of each root over kernel indices.
    std::map<int64_t, LiveInterval> live;
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      auto touch = [&](int64_t id) {
        if (!isArena(id))
          return;
        int64_t rootId = root.at(id);
        auto it = live.find(rootId);
        if (it == live.end())
          live[rootId] = {p.buffers[rootId].byteSize(), int64_t(k), int64_t(k),
                          p.buffers[rootId].offset};
        else
          it->second.end = int64_t(k);
      };
      for (auto id : p.kernels[k].outputs)
        touch(id);
      for (auto id : p.kernels[k].inputs)
        touch(id);
    }
    int64_t sum = 0;
    for (auto &[id, li] : live) {
      sum += li.bytes;
      EXPECT_LE(li.offset + li.bytes, p.arenaBytes) << name;
    }
    EXPECT_EQ(sum, p.intermediateBytes) << name;
    EXPECT_LE(p.arenaBytes, p.intermediateBytes + kArenaAlignment) << name;
    for (auto &[a, la] : live)
      for (auto &[b, lb] : live)
        if (a < b && timeOverlap(la, lb))
          EXPECT_FALSE(byteOverlap(la.offset, la.bytes, lb.offset, lb.bytes))
              << name << ": buffers " << a << " and " << b;
    // Reuse must actually happen on a multi-layer model, and the head
    // split/merge reshapes of the transformers must be views.
    if (std::string(name) == "gpt")
      EXPECT_LT(p.arenaBytes, p.intermediateBytes / 2);
    if (std::string(name) == "gpt" || std::string(name) == "bert")
      EXPECT_GT(views, 0) << name;
  }
}
