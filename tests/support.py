"""Helpers several test modules share (import as ``from support import ...``)."""
import re

#: A line TensorFlow's C++ runtime logs about CUDA on a machine with CUDA libraries and no GPU
#: ("failed call to cuInit", "Could not find cuda drivers"). It is printed before Python can
#: silence anything, so tests accept it; every other line on stderr is ours to keep quiet.
_TF_CUDA_LINE = re.compile(
    r"^(?:[EWI]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWI] |WARNING: All log messages)"
    r".*(?:cuda|cuInit|CUDA|GPU|gpu|absl::InitializeLog)", re.S)


def our_stderr(text: str) -> list[str]:
    """The lines of a process's stderr that we are responsible for (CUDA start-up noise from
    TensorFlow's C++ runtime removed)."""
    return [ln for ln in text.splitlines() if ln.strip() and not _TF_CUDA_LINE.match(ln)]


def assert_no_traceback(text: str) -> None:
    assert "Traceback (most recent call last)" not in text, text


def make_window(qtbot, tmp_path, monkeypatch, size=None):
    """A shown MainWindow with its own settings folder, nothing persisted, and no
    unsaved-changes question when pytest-qt closes it (the shared window fixture body)."""
    monkeypatch.setenv("GRAPH_SURGEON_SETTINGS_DIR", str(tmp_path / "settings"))
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    w.persist_settings = False
    qtbot.addWidget(w, before_close_func=lambda w: w.close_guards.clear())
    if size:
        w.resize(*size)
    w.show()
    return w
