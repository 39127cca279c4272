"""Keep TensorFlow's C++ start-up notices off the terminal without losing anything else.

TensorFlow 2.21 writes its start-up notices ("oneDNN custom operations are on…", CUDA probing on
machines with CUDA libraries, "All log messages before absl::InitializeLog() is called are
written to STDERR") straight to file descriptor 2 while its libraries load, before absl's log is
initialised: ``TF_CPP_MIN_LOG_LEVEL`` (any value) and the Python log levels do not reach them.

:func:`hold_tf_startup_lines` sends fd 2 to a temporary file while TensorFlow loads and then
writes every line that is not such a notice to the real stderr: what other threads print in the
meantime (our messages, tracebacks, Qt warnings) is delayed by the import's seconds, never
dropped. Errors TensorFlow logs (E/F lines) are kept, except the CUDA probing ones a machine
without a GPU always prints.
"""
from __future__ import annotations

import faulthandler
import os
import re
import sys
import tempfile
from contextlib import contextmanager

#: absl ("I0000 00:00:1795706175.785035   31966 port.cc:153] …") and TF's own
#: ("2025-09-17 14:44:05.157831: I tensorflow/…] …") log line headers.
_HEADER = re.compile(rb"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\]"
                     rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) [^\]\s]+:\d+\])")
_INIT_WARNING = b"WARNING: All log messages before absl::InitializeLog() is called"
#: The second line of cpu_feature_guard's notice ("This TensorFlow binary is optimized…").
_CPU_FEATURES = re.compile(rb"^To enable the following instructions: .*rebuild TensorFlow")
#: Error lines that only say there is no usable GPU (or that a plugin registered twice).
_GPU_PROBING = re.compile(rb"cuda|cuInit|CUDA|cuDNN|cuFFT|cuBLAS|GPU|gpu|TensorRT")


def is_tf_startup_line(line: bytes) -> bool:
    """True for a line TensorFlow's C++ side writes while it loads that is not a real error:
    info and warning lines, absl's InitializeLog warning, CUDA/GPU probing errors."""
    if line.startswith(_INIT_WARNING) or _CPU_FEATURES.match(line):
        return True
    m = _HEADER.match(line)
    if m is None:
        return False
    severity = m.group(1) or m.group(2)
    return severity in (b"I", b"W") or bool(_GPU_PROBING.search(line))


@contextmanager
def hold_tf_startup_lines():
    """While the block runs (TensorFlow's import), fd 2 goes to a temporary file; afterwards
    every line of it but TensorFlow's start-up notices goes to the real stderr. A fatal
    signal meanwhile is still reported on the real stderr (faulthandler)."""
    try:
        sys.stderr.flush()
        # fd 2 appends to the file (whoever writes, wherever the reader is); the reader has its
        # own offset. The file has no name once both are open.
        fd, name = tempfile.mkstemp(prefix="tf-startup-")
        try:
            append = os.open(name, os.O_WRONLY | os.O_APPEND)
        finally:
            os.unlink(name)
        held = os.fdopen(fd, "rb")
    except OSError:  # no temporary folder: let the lines through
        yield
        return
    saved = os.dup(2)
    os.dup2(append, 2)
    os.close(append)
    handler = faulthandler.is_enabled()
    real = os.fdopen(os.dup(saved), "w")
    if handler:
        faulthandler.enable(file=real)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        # pass on what was held while fd 2 still goes to the file (what others write meanwhile
        # follows it there, in order), then put fd 2 back and pass on the last piece; only a
        # line written at that very moment can come out before the ones just above it
        pending = b""
        while True:
            chunk = held.read()
            if not chunk:
                break
            pending = _pass_on(pending + chunk, saved)
        os.dup2(saved, 2)
        _pass_on(pending + held.read(), saved, last=True)
        os.close(saved)
        if handler:
            faulthandler.enable()  # sys.stderr again
        real.close()
        held.close()


def _pass_on(data: bytes, fd: int, last: bool = False) -> bytes:
    """Write the complete lines of ``data`` that are not start-up notices to ``fd``; returns
    the incomplete last line (written too when ``last``)."""
    lines = data.splitlines(keepends=True)
    rest = b""
    if lines and not last and not lines[-1].endswith(b"\n"):
        rest = lines.pop()
    out = b"".join(ln for ln in lines if not is_tf_startup_line(ln))
    while out:
        out = out[os.write(fd, out):]
    return rest


def silence_fd2() -> int | None:
    """Point fd 2 at /dev/null (TensorFlow's C++ start-up lines, written before any log level
    can act); returns what :func:`restore_fd2` needs, or None if it could not."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return saved
    except OSError:
        return None


def restore_fd2(saved: int | None) -> None:
    if saved is not None:
        os.dup2(saved, 2)
        os.close(saved)
