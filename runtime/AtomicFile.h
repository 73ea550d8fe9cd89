//===- AtomicFile.h - Writing a file so that a failure loses nothing -----===//
//
// Internal to the runtime (artifacts and .npy files).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ATOMICFILE_H
#define KILN_RUNTIME_ATOMICFILE_H

#include "kiln/runtime.h"

#include <functional>
#include <ostream>
#include <string>

namespace kiln {

/// Writes `path` with `write`, so that a failed write loses nothing: the
/// bytes go to a temporary file next to `path`, which is renamed over it
/// only when every byte was written and the file closed; on failure the
/// temporary is removed, `path` keeps what it had, and the status says why
/// (e.g. "artifact 'm.kiln': write failed: No space left on device").
/// A `path` that exists and is not a regular file (/dev/null, a FIFO) is
/// written in place. `what` names the kind of file in errors.
Status writeFileAtomically(const std::string &what, const std::string &path,
                           const std::function<void(std::ostream &)> &write);

} // namespace kiln

#endif // KILN_RUNTIME_ATOMICFILE_H
