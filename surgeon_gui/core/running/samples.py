"""Sample inputs for running and comparing graphs (Qt-free).

A :class:`SampleSet` says, for each graph input, where its values come from:

- ``random``: seeded values with a distribution (``normal``, ``uniform`` in ``[low, high)``,
  ``zeros``); bool inputs are False (inference), integer inputs small non-negative ints;
- ``file``: an array from a ``.npy`` file, or one array of an ``.npz`` file (by key; the input's
  name, else the only array);
- ``image``: for a 4-D float input, an image file decoded and resized to the input with
  TensorFlow (``tf.io.decode_image``/``tf.image.resize``, so no extra dependency), scaled to
  ``0..1``, ``-1..1`` or ``(pixel - mean) / std`` (mean/std in 0..255 units, per channel).

Shapes come from each Placeholder; unknown dimensions are filled in by the user, the first
defaulting to the set's ``batch`` (1), the height and width of an image input (see
:attr:`InputSpec.assumed_image_dims`) to 224 (the common ImageNet size) and the others to 1. Several named sets are kept in a
:class:`SampleLibrary`. Every problem is a :class:`SampleError` naming the input and the cause.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..model.graph import Graph, GraphError, node_of, numpy_dtype_name, shape_list

DISTRIBUTIONS = ("normal", "uniform", "zeros")
SOURCES = ("random", "file", "image")
SCALINGS = ("0..1", "-1..1", "mean/std")
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
#: Height and width given to an image input whose Placeholder leaves them unknown (a 1×1 image
#: fails most detectors' first convolutions; RetinaFace's ``[?, ?, ?, 3]``).
ASSUMED_IMAGE_SIZE = 224


class SampleError(GraphError):
    """Sample inputs cannot be made (bad file, wrong shape, unsupported dtype...)."""


@dataclass
class InputSpec:
    """What a graph input accepts: numpy dtype name and shape (-1 unknown; None unknown rank)."""
    name: str
    dtype: str
    shape: list[int] | None

    @property
    def unknown_dims(self) -> list[int]:
        return [] if self.shape is None else [i for i, d in enumerate(self.shape) if d < 0]

    @property
    def is_image_like(self) -> bool:
        """A 4-D float input (NHWC or NCHW) that an image can fill."""
        return (self.shape is not None and len(self.shape) == 4
                and np.issubdtype(np.dtype(self.dtype), np.floating))

    @property
    def assumed_image_dims(self) -> list[int]:
        """The unknown height/width dimensions of an image input, which default to
        :data:`ASSUMED_IMAGE_SIZE` rather than 1: a 4-D float input whose channels are known
        and 1, 3 or 4, last (NHWC, either spatial dim unknown) or second with both spatial
        dims unknown (NCHW). The batch and any other unknown dims are not images' sizes."""
        try:
            if not self.is_image_like:
                return []
        except TypeError:  # a dtype numpy does not know
            return []
        s = self.shape
        if s[3] in (1, 3, 4):
            return [i for i in (1, 2) if s[i] < 0]
        if s[1] in (1, 3, 4) and s[2] < 0 and s[3] < 0:
            return [2, 3]
        return []

    @property
    def assumption_note(self) -> str:
        """What the default shape assumes about an image's size ("" when nothing)."""
        n = len(self.assumed_image_dims)
        size = ASSUMED_IMAGE_SIZE
        if n == 2:
            return f"{size}×{size} assumed: the graph does not fix the image size"
        if n == 1:
            return f"{size} assumed for the image side the graph does not fix"
        return ""


def input_specs(graph: Graph, inputs: list[str] | None = None) -> list[InputSpec]:
    """The dtype and shape of each input (graph's inputs by default), from its Placeholder."""
    specs = []
    for name in (inputs if inputs is not None else graph.inputs):
        node = graph.node(name)
        if node.op not in ("Placeholder", "PlaceholderV2", "PlaceholderWithDefault"):
            raise SampleError(f"input {name!r} is a {node.op}, not a Placeholder", nodes=[name])
        try:
            # TF-free for the usual types: the comparison panel asks at the first view
            dtype = numpy_dtype_name(node.attr["dtype"].type) \
                if "dtype" in node.attr else "float32"
        except TypeError:
            dtype = "unsupported"
        shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
        specs.append(InputSpec(node_of(name), dtype, shape))
    return specs


@dataclass
class InputSource:
    """Where one input's values come from (see the module docstring)."""
    source: str = "random"
    distribution: str = "normal"
    low: float = 0.0
    high: float = 1.0
    #: Concrete shape chosen by the user for unknown dims (None: from the spec and batch).
    shape: list[int] | None = None
    path: str = ""
    key: str = ""
    scaling: str = "0..1"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


@dataclass
class SampleSet:
    """A named, reproducible choice of values for every input of a graph."""
    name: str = "default"
    seed: int = 0
    batch: int = 1
    inputs: dict[str, InputSource] = field(default_factory=dict)

    def source(self, name: str) -> InputSource:
        """The source for ``name`` (created as random on first use)."""
        return self.inputs.setdefault(node_of(name), InputSource())

    def resolved_shape(self, spec: InputSpec) -> list[int]:
        """The concrete shape to feed: user's shape, else spec with unknown dims filled."""
        src = self.inputs.get(spec.name)
        if src is not None and src.shape is not None:
            shape = list(src.shape)
            if spec.shape is not None:
                if len(shape) != len(spec.shape):
                    raise SampleError(f"input {spec.name!r} has rank {len(spec.shape)}, the "
                                      f"sample shape {shape} has rank {len(shape)}",
                                      nodes=[spec.name])
                for i, (d, s) in enumerate(zip(spec.shape, shape)):
                    if d >= 0 and s != d:
                        raise SampleError(f"input {spec.name!r} fixes dimension {i} to {d}, "
                                          f"the sample shape {shape} says {s}",
                                          nodes=[spec.name])
        elif spec.shape is None and spec.dtype == "bool":
            shape = []  # a TF1 training flag: a scalar holding the inference value (False)
        elif spec.shape is None:
            raise SampleError(f"input {spec.name!r} has unknown rank: type its shape in the "
                              "sample editor (e.g. 1,224,224,3)", nodes=[spec.name])
        else:
            image = spec.assumed_image_dims
            shape = [d if d >= 0 else self.batch if i == 0 else
                     ASSUMED_IMAGE_SIZE if i in image else 1
                     for i, d in enumerate(spec.shape)]
        if any(s < 0 for s in shape):
            raise SampleError(f"input {spec.name!r}: shape {shape} has a negative dimension",
                              nodes=[spec.name])
        return shape

    def make_feeds(self, graph: Graph, inputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """One array per input, keyed by node name (what :class:`GraphRunner.run` takes)."""
        feeds = {}
        for i, spec in enumerate(input_specs(graph, inputs)):
            feeds[spec.name] = self.make_value(spec, index=i)
        return feeds

    def guessed_shapes(self, graph: Graph, inputs: list[str] | None = None
                       ) -> dict[str, list[int]]:
        """Inputs whose unknown dimensions this set fills in by default (no shape of the
        user's, no file or image to take it from), with the shape they get: what to suspect
        when a run fails (a detector that needs another image size)."""
        out = {}
        for spec in input_specs(graph, inputs):
            src = self.inputs.get(spec.name)
            if spec.unknown_dims and (src is None or (src.shape is None
                                                      and src.source == "random")):
                try:
                    out[spec.name] = self.resolved_shape(spec)
                except SampleError:
                    pass
        return out

    def assumption(self, spec: InputSpec) -> str:
        """The spec's :attr:`~InputSpec.assumption_note` when this set uses the default shape
        (no shape of the user's, no array file giving it), else ""."""
        src = self.inputs.get(spec.name)
        if src is not None and (src.shape is not None or src.source == "file"):
            return ""
        return spec.assumption_note

    def make_value(self, spec: InputSpec, index: int = 0) -> np.ndarray:
        src = self.inputs.get(spec.name, InputSource())
        if spec.dtype == "unsupported":
            raise SampleError(f"input {spec.name!r} has a dtype that cannot be fed from numpy",
                              nodes=[spec.name])
        dtype = np.dtype(spec.dtype)
        if src.source == "file":
            return _from_file(spec, src, self.resolved_shape(spec) if src.shape else None)
        shape = self.resolved_shape(spec)
        if src.source == "image":
            return _from_image(spec, src, shape)
        if src.source != "random":
            raise SampleError(f"input {spec.name!r}: unknown source {src.source!r} "
                              f"(one of {', '.join(SOURCES)})", nodes=[spec.name])
        # One generator per input, so adding an input does not change the others' values.
        rng = np.random.default_rng([self.seed, index])
        if dtype == np.bool_:
            return np.zeros(shape, dtype=bool)
        if np.issubdtype(dtype, np.integer):
            return rng.integers(0, 10, size=shape).astype(dtype)
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating)):
            raise SampleError(f"input {spec.name!r} has dtype {spec.dtype}: random values "
                              "are for numbers; load it from a .npy file", nodes=[spec.name])
        if src.distribution == "zeros":
            return np.zeros(shape, dtype=dtype)
        if src.distribution == "uniform":
            if not src.high > src.low:
                raise SampleError(f"input {spec.name!r}: uniform range needs low < high "
                                  f"(got {src.low}..{src.high})", nodes=[spec.name])
            return rng.uniform(src.low, src.high, size=shape).astype(dtype)
        if src.distribution != "normal":
            raise SampleError(f"input {spec.name!r}: unknown distribution "
                              f"{src.distribution!r} (one of {', '.join(DISTRIBUTIONS)})",
                              nodes=[spec.name])
        return rng.standard_normal(size=shape).astype(dtype)

    def describe(self, spec: InputSpec) -> str:
        """A one-line summary for tables and reports."""
        src = self.inputs.get(spec.name, InputSource())
        if src.source == "file":
            return f"{Path(src.path).name}" + (f"[{src.key}]" if src.key else "")
        if src.source == "image":
            return f"image {Path(src.path).name}, {src.scaling}"
        if src.distribution == "uniform":
            return f"uniform {src.low:g}..{src.high:g}, seed {self.seed}"
        if src.distribution == "zeros":
            return "zeros"
        return f"normal, seed {self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SampleSet":
        inputs = {k: InputSource(**{**v, "mean": tuple(v.get("mean", IMAGENET_MEAN)),
                                    "std": tuple(v.get("std", IMAGENET_STD))})
                  for k, v in d.get("inputs", {}).items()}
        return cls(d.get("name", "default"), int(d.get("seed", 0)), int(d.get("batch", 1)),
                   inputs)


def _check_against_spec(spec: InputSpec, value: np.ndarray, what: str) -> np.ndarray:
    if spec.shape is not None:
        ok = len(spec.shape) == value.ndim and all(
            d < 0 or d == s for d, s in zip(spec.shape, value.shape))
        if not ok:
            want = ["?" if d < 0 else d for d in spec.shape]
            raise SampleError(f"input {spec.name!r} expects shape {want}, {what} has "
                              f"{list(value.shape)}", nodes=[spec.name])
    dtype = np.dtype(spec.dtype)
    if value.dtype != dtype:
        if not np.can_cast(value.dtype, dtype, casting="same_kind"):
            raise SampleError(f"input {spec.name!r} expects {spec.dtype}, {what} holds "
                              f"{value.dtype}", nodes=[spec.name])
        value = value.astype(dtype)
    return value


def _from_file(spec: InputSpec, src: InputSource, shape: list[int] | None) -> np.ndarray:
    p = Path(src.path)
    if not src.path:
        raise SampleError(f"input {spec.name!r}: no .npy/.npz file chosen", nodes=[spec.name])
    if not p.is_file():
        raise SampleError(f"input {spec.name!r}: no such file {p}", nodes=[spec.name])
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for bad files
        raise SampleError(f"input {spec.name!r}: {p.name} is not a readable .npy/.npz file "
                          f"({e})", nodes=[spec.name]) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            key = src.key or next((k for k in (spec.name, spec.name.replace("/", "_"))
                                   if k in keys), keys[0] if len(keys) == 1 else "")
            if key not in keys:
                raise SampleError(f"input {spec.name!r}: {p.name} has no array "
                                  f"{key or spec.name!r} (it holds {', '.join(keys) or 'none'})",
                                  nodes=[spec.name])
            value = loaded[key]
        what = f"{p.name}[{key}]"
    else:
        value, what = loaded, p.name
    value = _check_against_spec(spec, np.asarray(value), what)
    if shape is not None and list(value.shape) != list(shape):
        raise SampleError(f"input {spec.name!r}: {what} has shape {list(value.shape)}, the "
                          f"sample set asks for {shape}", nodes=[spec.name])
    return value


def image_layout(shape: list[int]) -> str:
    """``NHWC`` or ``NCHW`` for a 4-D input shape (channels last unless clearly first)."""
    if shape[3] in (1, 3, 4):
        return "NHWC"
    if shape[1] in (1, 3, 4):
        return "NCHW"
    return "NHWC"


def load_image(path: str, height: int, width: int, channels: int, scaling: str = "0..1",
               mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """An image file as a float32 ``[height, width, channels]`` array, resized and scaled."""
    import tensorflow as tf
    p = Path(path)
    if not p.is_file():
        raise SampleError(f"no such image file {p}")
    if channels not in (1, 3, 4):
        raise SampleError(f"an image has 1, 3 or 4 channels, the input wants {channels}")
    try:
        data = tf.io.read_file(str(p))
        img = tf.io.decode_image(data, channels=channels, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), [height, width], method="bilinear",
                              antialias=True)
        arr = img.numpy()
    except Exception as e:  # noqa: BLE001 - TF raises InvalidArgumentError and others
        msg = (getattr(e, "message", None) or str(e)).strip().splitlines()
        raise SampleError(f"{p.name} is not an image TensorFlow can decode (png, jpeg, bmp, "
                          f"gif): {msg[0] if msg else type(e).__name__}") from None
    arr = np.clip(arr, 0.0, 255.0)
    if scaling == "0..1":
        return arr / 255.0
    if scaling == "-1..1":
        return arr / 127.5 - 1.0
    if scaling == "mean/std":
        m = np.asarray(mean, dtype=np.float32).reshape(-1)
        s = np.asarray(std, dtype=np.float32).reshape(-1)
        if m.size not in (1, channels) or s.size not in (1, channels):
            raise SampleError(f"mean/std need 1 or {channels} values, got {m.size} and {s.size}")
        if np.any(s == 0):
            raise SampleError("std must not be zero")
        return (arr - m[:channels]) / s[:channels]
    raise SampleError(f"unknown scaling {scaling!r} (one of {', '.join(SCALINGS)})")


def _from_image(spec: InputSpec, src: InputSource, shape: list[int]) -> np.ndarray:
    if not spec.is_image_like:
        raise SampleError(f"input {spec.name!r} ({spec.dtype}, shape {spec.shape}) is not a "
                          "4-D float input; an image cannot fill it", nodes=[spec.name])
    if not src.path:
        raise SampleError(f"input {spec.name!r}: no image file chosen", nodes=[spec.name])
    layout = image_layout(shape)
    n, h, w, c = shape if layout == "NHWC" else (shape[0], shape[2], shape[3], shape[1])
    try:
        img = load_image(src.path, h, w, c, src.scaling, src.mean, src.std)
    except SampleError as e:
        raise SampleError(f"input {spec.name!r}: {e.problem}", nodes=[spec.name]) from None
    if layout == "NCHW":
        img = np.transpose(img, (2, 0, 1))
    return np.broadcast_to(img, [n, *img.shape]).astype(spec.dtype)


class SampleLibrary:
    """Several named sample sets, one of them current; saved as JSON next to a model."""

    def __init__(self, sets: list[SampleSet] | None = None):
        self.sets: list[SampleSet] = list(sets) if sets else [SampleSet("default")]
        self.current = 0

    def names(self) -> list[str]:
        return [s.name for s in self.sets]

    def get(self, name: str | None = None) -> SampleSet:
        if name is None:
            return self.sets[self.current]
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(f"no sample set named {name!r}")

    def unique_name(self, base: str) -> str:
        names, i, name = set(self.names()), 2, base
        while name in names:
            name, i = f"{base} {i}", i + 1
        return name

    def add(self, sample_set: SampleSet | None = None, copy_current: bool = True) -> SampleSet:
        new = copy.deepcopy(sample_set or (self.get() if copy_current else SampleSet()))
        new.name = self.unique_name(new.name if sample_set else "samples")
        self.sets.append(new)
        self.current = len(self.sets) - 1
        return new

    def remove(self, name: str) -> None:
        if len(self.sets) == 1:
            raise SampleError("the last sample set cannot be removed")
        s = self.get(name)
        self.sets.remove(s)
        self.current = min(self.current, len(self.sets) - 1)

    def rename(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise SampleError("a sample set needs a name")
        if new != old and new in self.names():
            raise SampleError(f"a sample set named {new!r} exists already")
        self.get(old).name = new

    def to_json(self) -> str:
        return json.dumps({"current": self.current,
                           "sets": [s.to_dict() for s in self.sets]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "SampleLibrary":
        try:
            d = json.loads(text)
            lib = cls([SampleSet.from_dict(s) for s in d["sets"]] or None)
            lib.current = min(int(d.get("current", 0)), len(lib.sets) - 1)
        except (ValueError, KeyError, TypeError) as e:
            raise SampleError(f"not a sample library file: {e}") from None
        return lib


def save_feeds(feeds: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write feeds as ``.npz`` keyed by input name (what ``surgeon compare --feeds`` reads)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(p, **feeds)
    return p if p.suffix == ".npz" else p.with_suffix(p.suffix + ".npz")
