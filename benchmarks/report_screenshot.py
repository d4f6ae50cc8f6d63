"""Look at a report as a reader does: render its report.html in headless Chromium and
save a screenshot (issue 14: check tables, bold best values and figures by eye).

    sudo apt-get install -y chromium          # Debian's package; not a dependency
    restorekit eval --data lfw_faces --degradation gaussian_low --baseline median \
        --baseline nlm --model face_attention_unet_low --out out/eval
    python benchmarks/report_screenshot.py out/eval/report.html out/eval/report.png

Prints the screenshot's path and size. Exits 2 with one line when Chromium is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="a report.html")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("report_screenshot: no chromium here (sudo apt-get install -y chromium)",
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.html.is_file():
        print(f"report_screenshot: {args.html}: no such file", file=sys.stderr)
        return 2
    args.png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={args.width},{args.height}", f"--screenshot={args.png.resolve()}",
         args.html.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    print(f"{args.png} ({args.png.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
