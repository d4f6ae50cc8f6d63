"""Model and training speed on this machine: a shortcut to ``restorekit bench``.

    python benchmarks/bench_models.py [--size 256 --model sr_edsr --recipe sr_edsr ...]

Every argument is passed to ``restorekit bench`` (see ``restorekit bench --help``): the
matmul peak, every shipped model's inference three ways (fp32 NCHW eager, restorekit's
default path with the precision chosen from the hardware, ONNX Runtime), and every
recipe's training step alone and end to end, measured side by side in one run.
"""

from __future__ import annotations

import sys

from restorekit.cli import run

if __name__ == "__main__":
    sys.exit(run(["bench", *sys.argv[1:]]))
