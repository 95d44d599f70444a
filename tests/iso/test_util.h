#pragma once
// Helpers for iso tests (and tftp's, which include this header): scratch
// directories and running external programs (xorriso, the isoboot binary) the
// way a user would. They live in tests/support/, shared by every layer.

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::test {

// A fresh directory under ISOBOOT_TEST_TMP (or /tmp), removed at scope end.
using ScratchDir = TempDir;

}  // namespace isoboot::test
