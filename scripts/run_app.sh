#!/usr/bin/env bash
# Set up a virtual environment and open the app on a bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e .

# Qt's X11 plugin needs a few xcb libraries that a fresh Debian/Ubuntu often lacks; without
# them Qt stops with "Could not load the Qt platform plugin xcb". Install them when we can,
# otherwise say which packages to install.
if [ "${QT_QPA_PLATFORM:-}" != "offscreen" ] && [ -n "${DISPLAY:-}" ]; then
  qpa=$(python -c 'import PySide6, pathlib; print(pathlib.Path(PySide6.__file__).parent / "Qt/lib/libQt6XcbQpa.so.6")')
  if [ -f "$qpa" ] && ldd "$qpa" | grep -q "not found"; then
    pkgs="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxkbcommon-x11-0 libegl1 libfontconfig1"
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
    else
      echo "Qt's X11 plugin is missing system libraries: $(ldd "$qpa" | awk '/not found/{print $1}' | sort -u | tr '\n' ' ')" >&2
      echo "On Debian/Ubuntu: sudo apt-get install $pkgs" >&2
      exit 1
    fi
  fi
fi
exec surgeon-gui "${1:-resources/examples/tf1_cond_bn_dropout.pb}"
