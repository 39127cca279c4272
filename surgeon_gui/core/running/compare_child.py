"""Run a comparison of two big graphs in a child Python process.

TensorFlow's ``import_graph_def`` is one C call that holds the GIL for the whole import:
1-3 s for NASNetLarge (357 MB), and a comparison imports the graphs several times (the run,
the noise floor, the drift). Run in a worker *thread*, that froze the GUI thread for seconds.
In a child process it has a GIL of its own; the parent only streams the graphs to it and
reads progress and the result back, and Cancel ends the child.

The graphs go over the pipe serialized node by node (each ``SerializeToString`` short; a
GraphDef's nodes are its field 1, so the pieces concatenate into the graph's bytes): one
whole-graph ``SerializeToString`` would again hold the GIL for seconds.

Wire format, both ways: frames of an 8-byte little-endian length and that many bytes.
Parent → child: the pickled request without its two graphs, then each graph as frames ending
with an empty one. Child → parent: pickled messages ``("progress", fraction, text)``, then
``("result", CompareResult without its request)`` or ``("error", kind, message, nodes)``.

This module imports nothing heavy at the top: the child reads its input before it imports
TensorFlow, so the parent's writes never wait for that import.
"""
from __future__ import annotations

import os
import pickle
import struct
import sys

_LEN = struct.Struct("<Q")
#: Nodes per frame when streaming a graph (one frame is joined holding the GIL: keep it short).
_FRAME_BYTES = 1 << 20


# ---------------------------------------------------------------------- framing
def _write_all(f, data) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        view = view[n:] if n is not None else view


def _write_frame(f, data) -> None:
    _write_all(f, _LEN.pack(len(data)))
    if data:
        _write_all(f, data)


def _read_exact(f, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        buf += chunk
    return bytes(buf)


def _read_frame(f) -> bytes:
    (n,) = _LEN.unpack(_read_exact(f, _LEN.size))
    return _read_exact(f, n) if n else b""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def graph_pieces(gd):
    """A GraphDef's serialized bytes in pieces of about a megabyte, made node by node (the
    pieces joined parse to the same graph)."""
    from ..model.graph import copy_without_nodes
    yield copy_without_nodes(gd).SerializeToString()
    parts, size = [], 0
    for n in gd.node:
        b = n.SerializeToString()
        parts += (b"\n", _varint(len(b)), b)   # field 1 (node), length-delimited
        size += len(b)
        if size >= _FRAME_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def write_graph(f, gd) -> None:
    for piece in graph_pieces(gd):
        if piece:
            _write_frame(f, piece)
    _write_frame(f, b"")


def read_graph(f):
    from ..model.protos import GraphDef
    buf = bytearray()
    while True:
        piece = _read_frame(f)
        if not piece:
            break
        buf += piece
    gd = GraphDef()
    gd.ParseFromString(memoryview(buf))   # (no bytes() copy: 350 MB less at the peak)
    return gd


# ---------------------------------------------------------------------- parent side
def run_in_child(req, progress=None, should_stop=None):
    """:func:`.comparison.comparison_job` in a child process (same result, same errors;
    :class:`InterruptedError` when ``should_stop()`` turns true — the child is ended)."""
    import dataclasses
    import select
    import subprocess
    import tempfile

    from ..model.graph import GraphError
    report = progress or (lambda f, t: None)
    stop = should_stop or (lambda: False)
    light = dataclasses.replace(req, reference=None, current=None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "from surgeon_gui.core.running.compare_child import child_main; child_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env, bufsize=0)
        done = False
        try:
            report(0.0, "sending the graphs to the comparison process")
            try:
                _write_frame(proc.stdin, pickle.dumps(light, protocol=pickle.HIGHEST_PROTOCOL))
                for gd in (req.reference, req.current):
                    if stop():
                        raise InterruptedError("cancelled")
                    write_graph(proc.stdin, gd)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the child ended early: what it said (or its exit) tells why
            out = proc.stdout
            while True:
                while not select.select([out], [], [], 0.1)[0]:
                    if stop():
                        raise InterruptedError("cancelled")
                    if proc.poll() is not None and not select.select([out], [], [], 0)[0]:
                        break
                try:
                    msg = pickle.loads(_read_frame(out))
                except EOFError:
                    errors.seek(0)
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise GraphError("the comparison process ended without a result "
                                     f"(exit code {proc.wait()})"
                                     + (": " + " / ".join(tail) if tail else "")) from None
                if msg[0] == "progress":
                    report(msg[1], msg[2])
                    if stop():
                        raise InterruptedError("cancelled")
                elif msg[0] == "result":
                    res = msg[1]
                    res.request = req
                    done = True
                    return res
                else:
                    _, kind, message, nodes = msg
                    exc = {"ValueError": ValueError, "KeyError": KeyError,
                           "OSError": OSError}.get(kind)
                    if exc is not None:
                        raise exc(message)
                    raise GraphError(message, nodes=nodes)
        finally:
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass
            if done:  # it is ending by itself: reap it without making the caller wait
                import threading
                threading.Thread(target=proc.wait, name="compare-child-reaper",
                                 daemon=True).start()
            else:     # cancelled or failed: end it now
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


# ---------------------------------------------------------------------- child side
def child_main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed goes to the parent's error log, not the pipe
    req = pickle.loads(_read_frame(inp))
    ref = read_graph(inp)
    cur = read_graph(inp)
    req.reference, req.current = ref, cur

    def send(msg) -> None:
        _write_frame(out, pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
        out.flush()

    from ..model.graph import GraphError
    from ..model.tfenv import quiet_tensorflow
    quiet_tensorflow()
    from .comparison import comparison_job
    try:
        res = comparison_job(req, progress=lambda f, t: send(("progress", f, t)))
    except GraphError as e:
        send(("error", "GraphError", e.problem if e.source is None else str(e), e.nodes))
        _end_now()
    except (ValueError, KeyError, OSError) as e:
        send(("error", type(e).__name__, str(e), []))
        _end_now()
    res.request = None  # the parent has it (two big graphs: not sent back)
    send(("result", res))
    _end_now()


def _end_now() -> None:
    """End the child as soon as it has said what it had to: no interpreter teardown. That
    teardown (collections over the two graphs and TensorFlow's objects, their frees) took 2-3 s
    of CPU on NASNetLarge after the result was sent, while the user went on (Ctrl+Z, redo)
    with two shared cores; the kernel lets go of the memory at once."""
    try:
        sys.stderr.flush()
    finally:
        os._exit(0)
