//===- Cpu.h - Shared internals of the cpu backend --------------*- C++ -*-===//
//
// The cpu backend prepares each kernel call once (see backends/Backend.h):
// oneDNN primitives with their memory descriptors and prepacked weights
// (Onednn.cpp), or an own multi-threaded kernel for what oneDNN lacks or
// does badly (Kernels.cpp; flash attention in Attention.cpp). A factory that
// cannot take a call (dtype, shape or attribute it does not handle) declines,
// and the call goes to the reference kernel, which also reports any user
// error.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BACKENDS_CPU_CPU_H
#define KILN_RUNTIME_BACKENDS_CPU_CPU_H

#include "backends/Backend.h"

#include <optional>

namespace kiln::cpu {

/// Threads for oneDNN and own kernels: KILN_NUM_THREADS when set to a
/// positive integer, otherwise every core. Read once.
int numThreads();

/// Whether this CPU has AVX-512 F, BW, VL and DQ (oneDNN's avx512_core): the
/// attention microkernels and oneDNN's Winograd convolutions need it. Read
/// once.
bool hasAvx512();

/// Makes the calling thread's OpenMP parallel regions (oneDNN's and ours)
/// use numThreads().
void applyThreads();

/// Activations the cpu backend computes itself in f32, as oneDNN 2.6's
/// eltwise (and post-op) versions measured 4-6x slower than a pass bound by
/// memory on AVX-512: 1.2M values, 2 threads, oneDNN silu 0.50 ms, sigmoid
/// 0.54, tanh 0.64; relu (memory bound) 0.11, the own silu 0.12.
enum class Activation { silu, sigmoid, tanh, geluTanh };

/// The activation of an op or epilogue step name ("silu", "sigmoid",
/// "tanh", "gelu_tanh"), if it is one of them.
std::optional<Activation> activationNamed(const std::string &name);

/// activationNamed where the own pass beats oneDNN's eltwise and post-op
/// (on AVX-512; elsewhere the own pass is a scalar loop and oneDNN keeps
/// them): the one place that choice is made.
std::optional<Activation> ownActivation(const std::string &name);

/// y = f(x) for n f32 values (y == x: in place), within ~4e-7 relative with
/// AVX-512 (vector exp2 and tanh; gelu_tanh as x / (1 + exp(-2u))), the
/// std:: functions otherwise. activationF32 splits the values across
/// numThreads(); activationF32Serial runs on the calling thread (for
/// callers inside their own parallel region).
void activationF32(Activation f, const float *x, float *y, int64_t n);
void activationF32Serial(Activation f, const float *x, float *y, int64_t n);

/// Attribute readers for factories: the value, the contract default when
/// absent, or nullopt when present with the wrong JSON type (the factory then
/// declines and the reference kernel reports the error).
std::optional<int64_t> attrInt(const PrepareContext &pc, const char *name,
                               std::optional<int64_t> def);
std::optional<bool> attrBool(const PrepareContext &pc, const char *name,
                             bool def);
std::optional<double> attrFloat(const PrepareContext &pc, const char *name,
                                double def);
std::optional<std::string> attrString(const PrepareContext &pc,
                                      const char *name,
                                      std::optional<std::string> def);
std::optional<std::vector<int64_t>>
attrInts(const PrepareContext &pc, const char *name,
         std::optional<std::vector<int64_t>> def);

/// NumPy broadcast of two shapes; nullopt when incompatible.
std::optional<std::vector<int64_t>>
broadcastShape(const std::vector<int64_t> &a, const std::vector<int64_t> &b);

/// Whether the call has `ins` operands and one result, and no buffer is
/// empty (size-0 tensors go to the reference kernels).
bool simpleArity(const PrepareContext &pc, size_t minIn, size_t maxIn);

/// The cpu backend's layout plan (Backend::setLayoutPlanner): f32
/// [N, C, H, W] intermediates that only convolutions and pools write and
/// only convolutions (as source or residual), pools and global_avg_pool read
/// are stored channel-blocked as oneDNN's direct convolutions want them
/// (nChw16c with AVX-512), so no convolution reorders its activations and
/// 1x1 convolutions run the blocked kernels with native post-ops. Other
/// buffers stay plain.
std::vector<Layout> planBlockedLayouts(const Program &program);

/// Registration, one per source file.
void registerOnednnKernels(Backend &b);
void registerOwnKernels(Backend &b);
void registerAttentionKernels(Backend &b);

/// Makes attention kernels prepared from now on use the portable tile code
/// instead of the AVX-512 one (tests cover both paths on AVX-512 machines).
void setAttentionPortableForTesting(bool portable);

/// Whether f32 3x3 stride-1 convolutions may run oneDNN's Winograd kernels
/// (see prepareConv in Onednn.cpp): true unless KILN_CONV_WINOGRAD=0 is set
/// in the environment (read once) or a test turned it off.
bool convWinogradEnabled();
/// Turns the Winograd choice off (or back to the environment's setting) for
/// convolutions prepared afterwards; for tests.
void setConvWinogradForTesting(bool enabled);

} // namespace kiln::cpu

#endif // KILN_RUNTIME_BACKENDS_CPU_CPU_H
