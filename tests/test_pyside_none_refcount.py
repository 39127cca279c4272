"""PySide6 6.12 on Python 3.11 drops a reference to None on every void Qt call; without the pin
in ui/_pyside_refcount_fix a window painting a big graph aborts with "deallocating None"."""
import os
import subprocess
import sys

CODE = """
import surgeon_gui.ui  # applies the fixes
from PySide6.QtGui import QColor
color = QColor(1, 2, 3)
for _ in range(400_000):   # more than None's ~100,000-160,000 references at start
    color.setAlpha(7)
print("alive")
"""


def test_many_void_qt_calls_do_not_deallocate_none():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "alive"
