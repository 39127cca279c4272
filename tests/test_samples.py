"""Sample-input sets: shapes from Placeholders, seeded distributions, .npy/.npz, images."""
import numpy as np
import pytest
import tensorflow as tf

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.running.samples import (InputSource, SampleError, SampleLibrary, SampleSet,
                                      input_specs, load_image, save_feeds)


def _graph(shape=(None, 8, 8, 3), dtype=tf.float32, extra=True):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(dtype, shape, name="image")
        y = tf.identity(x * 2 if dtype.is_floating else x, name="out")
        if extra:
            ids = tf.compat.v1.placeholder(tf.int32, [None, 4], name="ids")
            flag = tf.compat.v1.placeholder(tf.bool, [], name="flag")
            tf.identity(ids, name="ids_out")
            tf.identity(flag, name="flag_out")
    _ = y
    return Graph(g.as_graph_def())


def test_specs_come_from_the_placeholders():
    specs = {s.name: s for s in input_specs(_graph())}
    assert specs["image"].dtype == "float32" and specs["image"].shape == [-1, 8, 8, 3]
    assert specs["image"].unknown_dims == [0] and specs["image"].is_image_like
    assert specs["ids"].dtype == "int32" and not specs["ids"].is_image_like
    assert specs["flag"].dtype == "bool" and specs["flag"].shape == []


def test_unknown_dims_take_the_batch_and_user_shapes_are_checked():
    g = _graph()
    s = SampleSet(batch=3)
    feeds = s.make_feeds(g)
    assert feeds["image"].shape == (3, 8, 8, 3) and feeds["image"].dtype == np.float32
    assert feeds["ids"].shape == (3, 4) and feeds["ids"].dtype == np.int32
    assert feeds["flag"].dtype == bool and not feeds["flag"]
    s.source("image").shape = [5, 8, 8, 3]
    assert s.make_feeds(g)["image"].shape == (5, 8, 8, 3)
    s.source("image").shape = [5, 9, 8, 3]
    with pytest.raises(SampleError, match="fixes dimension 1 to 8"):
        s.make_feeds(g)
    s.source("image").shape = [5, 8, 8]
    with pytest.raises(SampleError, match="rank 4"):
        s.make_feeds(g)


def test_seeded_values_are_reproducible_and_distributions_hold():
    g = _graph(extra=False)
    a = SampleSet(seed=1, batch=64).make_feeds(g)["image"]
    b = SampleSet(seed=1, batch=64).make_feeds(g)["image"]
    c = SampleSet(seed=2, batch=64).make_feeds(g)["image"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean()) < 0.05 and 0.95 < a.std() < 1.05   # standard normal
    s = SampleSet(batch=64, inputs={"image": InputSource(distribution="uniform", low=-3,
                                                         high=-1)})
    u = s.make_feeds(g)["image"]
    assert u.min() >= -3 and u.max() < -1 and abs(u.mean() + 2) < 0.05
    s.source("image").distribution = "zeros"
    assert not s.make_feeds(g)["image"].any()
    s.source("image").distribution = "uniform"
    s.source("image").high = -5
    with pytest.raises(SampleError, match="low < high"):
        s.make_feeds(g)


def test_values_from_npy_and_npz(tmp_path):
    g = _graph()
    arr = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    np.save(tmp_path / "x.npy", arr)
    np.savez(tmp_path / "x.npz", image=arr + 1, other=np.zeros(3))
    s = SampleSet(inputs={"image": InputSource(source="file", path=str(tmp_path / "x.npy"))})
    s.source("ids").shape = [2, 4]
    assert np.array_equal(s.make_feeds(g)["image"], arr)
    s.source("image").path = str(tmp_path / "x.npz")          # found by the input's name
    assert np.array_equal(s.make_feeds(g)["image"], arr + 1)
    s.source("image").key = "other"
    with pytest.raises(SampleError, match=r"expects shape \['\?', 8, 8, 3\]"):
        s.make_feeds(g)
    s.source("image").key = "missing"
    with pytest.raises(SampleError, match="has no array 'missing'.*image, other"):
        s.make_feeds(g)
    s.source("image").path = str(tmp_path / "nope.npy")
    with pytest.raises(SampleError, match="no such file"):
        s.make_feeds(g)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    s.source("image").path = str(tmp_path / "bad.npy")
    with pytest.raises(SampleError, match="not a readable"):
        s.make_feeds(g)


def test_integer_file_cast_and_refusal(tmp_path):
    g = _graph(extra=False)
    np.save(tmp_path / "i.npy", np.ones((1, 8, 8, 3), dtype=np.int64))
    np.save(tmp_path / "f.npy", np.ones((1, 8, 8, 3), dtype=np.float64))
    s = SampleSet(inputs={"image": InputSource(source="file", path=str(tmp_path / "f.npy"))})
    assert s.make_feeds(g)["image"].dtype == np.float32       # same kind: cast
    gi = _graph(dtype=tf.int32, extra=False)
    s.source("image").path = str(tmp_path / "f.npy")
    with pytest.raises(SampleError, match="expects int32"):
        s.make_feeds(gi)


def _png(path, h=20, w=30):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 255            # red everywhere
    img[:, : w // 2, 1] = 255    # left half yellow
    tf.io.write_file(str(path), tf.io.encode_png(img))
    return path


def test_image_inputs_are_resized_and_scaled(tmp_path):
    p = _png(tmp_path / "a.png")
    g = _graph(extra=False)
    s = SampleSet(batch=2, inputs={"image": InputSource(source="image", path=str(p))})
    x = s.make_feeds(g)["image"]
    assert x.shape == (2, 8, 8, 3) and x.dtype == np.float32
    assert np.allclose(x[..., 0], 1.0) and np.allclose(x[..., 2], 0.0)
    assert np.allclose(x[0, :, 0, 1], 1.0) and np.allclose(x[0, :, -1, 1], 0.0)
    s.source("image").scaling = "-1..1"
    x = s.make_feeds(g)["image"]
    assert np.allclose(x[..., 0], 1.0) and np.allclose(x[..., 2], -1.0)
    s.source("image").scaling = "mean/std"
    s.source("image").mean, s.source("image").std = (255.0, 0.0, 127.5), (1.0, 1.0, 127.5)
    x = s.make_feeds(g)["image"]
    assert np.allclose(x[..., 0], 0.0, atol=1e-3) and np.allclose(x[..., 2], -1.0)
    # Channels first: the image is transposed to the input's layout.
    gc = _graph(shape=(None, 3, 8, 8), extra=False)
    s.source("image").scaling = "0..1"
    x = s.make_feeds(gc)["image"]
    assert x.shape == (2, 3, 8, 8) and np.allclose(x[:, 0], 1.0)


def test_image_refusals(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"no image")
    with pytest.raises(SampleError, match="not an image TensorFlow can decode"):
        load_image(str(tmp_path / "junk.png"), 4, 4, 3)
    g = _graph()
    s = SampleSet(inputs={"ids": InputSource(source="image", path=str(_png(tmp_path / "a.png")))})
    with pytest.raises(SampleError, match="not a 4-D float input"):
        s.make_feeds(g)


def test_library_keeps_several_named_sets(tmp_path):
    lib = SampleLibrary()
    lib.get().seed = 7
    new = lib.add()
    assert new.name == "samples" and new.seed == 7 and lib.get() is new
    lib.add()
    assert lib.names() == ["default", "samples", "samples 2"]
    lib.rename("samples 2", "cats")
    with pytest.raises(SampleError, match="exists already"):
        lib.rename("cats", "default")
    lib.get("cats").inputs["image"] = InputSource(source="image", path="cat.png",
                                                 scaling="mean/std")
    again = SampleLibrary.from_json(lib.to_json())
    assert again.names() == lib.names() and again.current == lib.current
    assert again.get("cats").inputs["image"] == lib.get("cats").inputs["image"]
    lib.remove("default")
    lib.remove("samples")
    with pytest.raises(SampleError, match="last sample set"):
        lib.remove("cats")
    with pytest.raises(SampleError, match="not a sample library"):
        SampleLibrary.from_json("{}")


def test_save_feeds_roundtrip(tmp_path):
    feeds = SampleSet(batch=2).make_feeds(_graph())
    p = save_feeds(feeds, tmp_path / "f.npz")
    with np.load(p) as z:
        assert set(z.files) == set(feeds)
        for k in feeds:
            assert np.array_equal(z[k], feeds[k])
