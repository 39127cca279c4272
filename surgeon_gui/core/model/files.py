"""The one write path: every file the app writes (graph, recipe, report, screenshot, .npy) goes
through here.

Rules, checked before a single byte is written:

- an existing file is replaced only when the caller says so (``overwrite=True``: the CLI's
  ``--force``, or the GUI after asking);
- no two outputs, and no output and input, may be the same file — compared after resolving
  symbolic links (and by inode when both exist, so hard links count too);
- a destination must not be a folder, and its folder must exist or be creatable and be writable;
- with several outputs, every destination is checked before any is written
  (:func:`check_destinations`, then :func:`write_files`).

Writing is atomic: the bytes go to a temporary file next to the target (same folder, so the
rename cannot cross file systems), are flushed to disk, and replace the target in one
``os.replace``. The temporary file is removed on every failure; one left behind by a run that
was killed (its name carries the writer's process id) is removed by the next save to the same
folder.

Symbolic links: writing onto a link (with ``overwrite``) keeps the link and atomically replaces
the file it points to — the user's link stays a link, and the file they meant gets the bytes.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .graph import GraphError

TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


class WriteRefused(GraphError):
    """A write the app refuses before writing anything (same file twice, a folder, no access)."""


class OverwriteRefused(FileExistsError):
    """The destination exists and overwriting it was not allowed (one line for the user)."""

    def __init__(self, path: str | os.PathLike, hint: str = "add --force to replace it"):
        self.path = str(path)
        super().__init__(f"{path}: exists; not overwriting it ({hint})")

    def __str__(self) -> str:
        return self.args[0]


def real_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` lands in: links resolved, the file itself need not exist."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(str(path)))))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (links resolved; hard links by inode)."""
    ra, rb = real_target(a), real_target(b)
    if ra == rb:
        return True
    try:
        return os.path.samefile(ra, rb)
    except OSError:
        return False


def check_destinations(outputs: Sequence[str | os.PathLike],
                       inputs: Iterable[str | os.PathLike] = (),
                       overwrite: bool = False,
                       hint: str = "add --force to replace it") -> list[Path]:
    """Check every destination before anything is written; returns them as Paths.

    Raises :class:`OverwriteRefused` for an existing file without ``overwrite`` and
    :class:`WriteRefused` for the rest (same file twice, output = input, folder, no access).
    """
    outs = [Path(os.path.expanduser(str(o))) for o in outputs]
    ins = [Path(os.path.expanduser(str(i))) for i in inputs if i is not None]
    for k, out in enumerate(outs):
        src = str(out)
        for inp in ins:
            if same_file(out, inp):
                raise WriteRefused(f"is the input file {inp}; write somewhere else", src)
            # writing into a SavedModel folder that is the input
            ri = real_target(inp)
            if ri.is_dir() and ri in real_target(out).parents:
                raise WriteRefused(f"is inside the input folder {inp}; write somewhere else",
                                   src)
        for other in outs[:k]:
            if same_file(out, other):
                raise WriteRefused(f"is also the destination {other}; two outputs cannot "
                                   "be the same file", src)
        target = real_target(out)
        if target.is_dir():
            raise WriteRefused("is a folder; give a file name", src)
        if os.path.lexists(out) or target.exists():
            if not overwrite:
                raise OverwriteRefused(out, hint)
            if not target.is_file():
                raise WriteRefused("exists and is not a regular file; not replacing it", src)
        folder = _nearest_existing(target.parent)
        if not folder.is_dir():
            raise WriteRefused(f"cannot write: {folder} is not a folder", src)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise WriteRefused(f"cannot write: no permission to write in {folder}", src)
    return outs


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


#: What a write takes: the bytes, or an iterable of chunks written one after the other (a big
#: GraphDef streamed node by node: :func:`graph_def_chunks`).
Data = bytes | Iterable[bytes]


def graph_def_chunks(gd) -> Iterable[bytes]:
    """``gd.SerializeToString(deterministic=True)``, node by node: field 1 (node) tag, length,
    the NodeDef's bytes, then the other fields. The same bytes, without holding a second copy
    of a big graph in memory (tests/test_copy_on_write.py compares them). A weight whose
    value is computed when written (:mod:`.deferred`) is written as its value."""
    from .deferred import MARK, resolved
    from .graph import copy_without_nodes
    for node in gd.node:
        if node.op == "Const" and MARK in node.attr:
            node = resolved(node)  # its new weights, made now and dropped once written
        data = node.SerializeToString(deterministic=True)
        yield b"\n" + _varint(len(data))
        yield data
    yield copy_without_nodes(gd).SerializeToString(deterministic=True)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def write_file(path: str | os.PathLike, data: Data, overwrite: bool = False,
               inputs: Iterable[str | os.PathLike] = (),
               hint: str = "add --force to replace it") -> Path:
    """Check ``path`` (see :func:`check_destinations`) and write ``data`` there atomically."""
    (p,) = check_destinations([path], inputs, overwrite, hint)
    write_atomic(p, data)
    return p


def write_files(files: Mapping[str | os.PathLike, Data],
                inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                hint: str = "add --force to replace it") -> list[Path]:
    """Check every destination, then write each atomically (nothing is written if one fails)."""
    paths = check_destinations(list(files), inputs, overwrite, hint)
    for p, data in zip(paths, files.values()):
        write_atomic(p, data)
    return paths


def write_atomic(path: str | os.PathLike, data: Data) -> Path:
    """Write ``data`` (bytes, or chunks of bytes) to ``path`` atomically (no checks: use
    :func:`write_file`).

    A symbolic link is kept: its target is replaced. The temporary file sits next to the
    target and is removed on any failure (including KeyboardInterrupt).
    """
    link = Path(path)
    p = real_target(link) if link.is_symlink() else Path(os.path.abspath(link))
    p.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=TEMP_SUFFIX,
                               dir=str(p.parent))
    try:
        # mkstemp makes the file owner-only (0600); give it the mode a plain open() would
        # (or keep the mode of the file being replaced).
        try:
            mode = p.stat().st_mode & 0o777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                for chunk in data:
                    f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove temporary files for ``target`` left by writers that no longer run."""
    p = Path(target)
    removed = []
    try:
        entries = list(os.scandir(p.parent))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if not m or m.group("name") != p.name:
            continue
        pid = int(m.group("pid"))
        if pid != os.getpid() and _alive(pid):
            continue  # another process is writing it right now
        if pid == os.getpid():
            continue  # ours: a write in progress in another thread
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
