"""Write the tutorial for the bundled TF1 model and photograph it in headless Chromium.

    python docs/make_tutorial_png.py [--keep-html DIR]

Runs ``surgeon optimize resources/examples/tf1_cond_bn_dropout.pb OUT --report tutorial.html``
(pictures drawn offscreen by the app's graph view), opens the page in Debian's ``chromium``
(``apt-get install -y chromium``) headless, and writes:

- ``docs/tutorial_tf1.png``: the top of the page (1200×3000 window: title, verdict, first steps);
- ``docs/tutorial_tf1_end.png``: the end of the page (the fold step's worked numbers, the
  comparison table and "outputs equal: PASS").

Needs ImageMagick's ``convert`` to cut the end of the page out of a tall screenshot.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"


def shoot(url: str, out: Path, height: int) -> None:
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={out}", f"--window-size=1200,{height}",
                    url], check=True, capture_output=True, timeout=180)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-html", help="also keep the page in this folder")
    args = ap.parse_args(argv)
    if not shutil.which("chromium"):
        print("needs chromium (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        page = d / "tutorial_tf1.html"
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        subprocess.run([sys.executable, "-m", "surgeon_gui.cli", "optimize", str(MODEL),
                        str(d / "opt.pb"), "--report", str(page)], check=True, cwd=ROOT, env=env)
        shoot(page.as_uri(), ROOT / "docs" / "tutorial_tf1.png", 3000)
        tall = d / "tall.png"
        shoot(page.as_uri(), tall, 16000)
        trimmed = d / "trimmed.png"
        subprocess.run(["convert", str(tall), "-trim", "+repage", str(trimmed)], check=True)
        h = int(subprocess.run(["identify", "-format", "%h", str(trimmed)], check=True,
                               capture_output=True, text=True).stdout)
        subprocess.run(["convert", str(trimmed), "-crop", f"1200x2400+0+{max(0, h - 2400)}",
                        "+repage", "-bordercolor", "white", "-border", "20",
                        str(ROOT / "docs" / "tutorial_tf1_end.png")], check=True)
        if args.keep_html:
            shutil.copy(page, Path(args.keep_html) / page.name)
    print("docs/tutorial_tf1.png, docs/tutorial_tf1_end.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
