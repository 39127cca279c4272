"""Which ops the installed TensorFlow registers, without importing TensorFlow when it can.

``surgeon info`` names the ops of a graph that this TensorFlow cannot run. Asking TF's op
registry means importing TF (2-4 s), the only thing ``info`` on a GraphDef would need it for.
So the registered op names are kept in a small cache file per TensorFlow installation
(``$XDG_CACHE_HOME/surgeon_gui/registered-ops-<key>.txt``, one name a line), written whenever
a process of ours has TensorFlow imported anyway and asks; the key changes with the TensorFlow
install (its folder, and the size and time of its ``__init__.py`` and framework library), so
an upgrade never reads a stale list. No cache: TensorFlow is imported and the cache written.
We never load custom op libraries, so the registry is the install's own set.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "surgeon_gui"


def _install_key() -> str | None:
    spec = importlib.util.find_spec("tensorflow") if "tensorflow" not in sys.modules \
        else sys.modules["tensorflow"].__spec__
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    parts = [str(folder)]
    for f in [folder / "__init__.py", *sorted(folder.glob("libtensorflow_framework*"))]:
        try:
            st = f.stat()
        except OSError:
            continue
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def cache_path() -> Path | None:
    key = _install_key()
    return None if key is None else _cache_dir() / f"registered-ops-{key}.txt"


def _from_tensorflow() -> frozenset[str]:
    from tensorflow.python.client import pywrap_tf_session as c_api

    from .protos import op_def_pb2
    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return frozenset(op.name for op in ops.op)


def _write_cache(path: Path, names: frozenset[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(sorted(names)) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: no cache, the next run asks TensorFlow again


def registered_op_names() -> frozenset[str]:
    """Every op name the installed TensorFlow registers (from the cache when there is one)."""
    path = cache_path()
    if path is not None and "tensorflow" not in sys.modules:
        try:
            names = frozenset(path.read_text(encoding="utf-8").split())
            if names:
                return names
        except OSError:
            pass
    from .tfenv import quiet_tensorflow
    quiet_tensorflow()
    names = _from_tensorflow()
    if path is not None and not path.exists():
        _write_cache(path, names)
    return names
