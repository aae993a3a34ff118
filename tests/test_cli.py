"""The dpsgd command, run as a user would."""

import subprocess
import sys

import numpy as np

from dpsgd import load_model


def run(*args):
    return subprocess.run([sys.executable, "-m", "dpsgd", *args], capture_output=True, text=True, timeout=300)


def test_info():
    out = run("info")
    assert out.returncode == 0, out.stderr
    assert "dpsgd 0.1.0" in out.stdout and "OpenMP:" in out.stdout and "MPI:" in out.stdout


def test_train_linear_on_bundled_a9a_and_save(tmp_path):
    model = tmp_path / "model.npz"
    out = run("train", "linear", "--epochs", "3", "--alpha", "1e-3", "--threads", "1", "--save", str(model))
    assert out.returncode == 0, out.stderr
    assert "bundled a9a" in out.stdout
    result = [line for line in out.stdout.splitlines() if line.startswith("result:")][0]
    accuracy = float(result.split("test accuracy ")[1].split(",")[0])
    assert accuracy > 0.84
    assert "epoch" in out.stderr  # the progress bar
    clf = load_model(model)
    assert clf.coef_.shape == (1, 123)


def test_train_linear_on_a_file(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(300):
        features = sorted(rng.choice(20, 5, replace=False) + 1)
        label = 1 if features[0] < 5 else -1
        lines.append(f"{label} " + " ".join(f"{j}:1" for j in features))
    path = tmp_path / "train.svm"
    path.write_text("\n".join(lines) + "\n")
    out = run("train", "linear", "--data", str(path), "--test", str(path), "--epochs", "5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout


def test_errors_are_reported_not_raised(tmp_path):
    out = run("train", "linear", "--data", str(tmp_path / "absent.svm"))
    assert out.returncode == 2 and "no such svmlight file" in out.stderr
    bad = tmp_path / "bad.svm"
    bad.write_text("1 1:1\n1 2:x\n")
    out = run("train", "linear", "--data", str(bad))
    assert out.returncode == 2 and "line 2" in out.stderr
    assert "Traceback" not in out.stderr


def test_console_script_entry_point():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("dpsgd") == "dpsgd.cli:main"
