"""Shared test set-up: headless Qt, quiet TensorFlow, and real model factories as fixtures."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tf1_graph():
    """TF1 v1-control-flow CNN with cond-wrapped batch norms and dropout (graph_def, ins, outs)."""
    from surgeon_gui.core.model.examples import tf1_cond_bn_dropout
    return tf1_cond_bn_dropout()


@pytest.fixture(scope="session")
def small_cond_bn():
    """The benchmarks' big cond/batch-norm CNN (make_big_models.py) with 3 stages of 2 blocks:
    the same nesting of stages, blocks, batch norms and their conds, at 1,200 nodes."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "make_big_models.py"
    spec = importlib.util.spec_from_file_location("make_big_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_tf1_cond_bn_big(stages=3, blocks_per_stage=2)


@pytest.fixture(scope="session")
def cond_bn_10k_path(tmp_path_factory):
    """The benchmarks' 10.7k-node TF1 graph (tf1_cond_bn_big.pb): benchmarks/_models' copy when
    make_big_models.py has written it, else made here once per session (~8 s; a fresh machine, CI)."""
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    path = root / "benchmarks" / "_models" / "tf1_cond_bn_big.pb"
    if path.exists():
        return path
    from surgeon_gui.core.model.io import save_graph
    spec = importlib.util.spec_from_file_location(
        "make_big_models", root / "benchmarks" / "make_big_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = tmp_path_factory.mktemp("cond_bn_10k") / "tf1_cond_bn_big.pb"
    save_graph(mod.make_tf1_cond_bn_big()[0], path)
    return path


@pytest.fixture(scope="session")
def tf2_graph():
    from surgeon_gui.core.model.examples import tf2_if_bn_dropout
    return tf2_if_bn_dropout()


@pytest.fixture(scope="session")
def mobilenet_v2():
    from surgeon_gui.core.model.examples import keras_application
    return keras_application("MobileNetV2", input_size=96)


@pytest.fixture(scope="session")
def resnet50():
    from surgeon_gui.core.model.examples import keras_application
    return keras_application("ResNet50", input_size=64)


@pytest.fixture(scope="session")
def tf1_flag_v1():
    """TF1 layers-style net on ``model/Placeholder_1 = placeholder(tf.bool)``, Switch/Merge."""
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    return tf1_layers_flag_net(v1_control_flow=True)


@pytest.fixture(scope="session")
def tf1_flag_v2():
    """The same net built with TF2 control flow in graph mode (If, predicate via Squeeze)."""
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    return tf1_layers_flag_net(v1_control_flow=False)
