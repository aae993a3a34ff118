"""The dpsgd command as a user meets it: models used after training, progress in logs, pipes,
Ctrl-C, and `info` under mpiexec."""

import io
import os
import signal
import subprocess
import sys
import time
from importlib import resources

import numpy as np
import pytest

from dpsgd import load_model
from dpsgd.cli import main
from dpsgd.progress import Progress


def run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "dpsgd", *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kwargs)


def a9a_test_file():
    return resources.as_file(resources.files("dpsgd.data") / "a9a" / "a9a.t.svm.gz")


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("linear") / "model.npz"
    assert main(["train", "linear", "--epochs", "3", "--alpha", "1e-3", "--threads", "1", "--quiet",
                 "--save", str(path)]) == 0
    return path


def test_predict_writes_one_label_per_row_and_scores_and_probabilities(linear_model, tmp_path):
    from dpsgd.data import load_svmlight

    with a9a_test_file() as data:
        X, y = load_svmlight(data, n_features=123)
        out = run("predict", linear_model, data, "--output", tmp_path / "labels.txt")
        assert out.returncode == 0, out.stderr
        labels = np.loadtxt(tmp_path / "labels.txt")
        proba = run("predict", linear_model, data, "--proba", "--quiet")
        scores = run("predict", linear_model, data, "--scores", "--quiet")
    model = load_model(linear_model)
    assert labels.shape == (X.shape[0],) and set(np.unique(labels)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(labels, model.predict(X))
    accuracy = float(out.stderr.split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(model.score(X, y), abs=1e-4) and accuracy > 0.84
    p = np.loadtxt(io.StringIO(proba.stdout))
    assert p.shape == (X.shape[0], 2) and np.allclose(p.sum(axis=1), 1.0) and proba.stderr == ""
    np.testing.assert_allclose(np.loadtxt(io.StringIO(scores.stdout)), model.decision_function(X), rtol=1e-8)


def write_docword(path, X):
    coo = X.tocoo()
    order = np.lexsort((coo.col, coo.row))
    body = "".join(f"{r + 1} {c + 1} {int(v)}\n" for r, c, v in zip(coo.row[order], coo.col[order], coo.data[order]))
    path.write_text(f"{X.shape[0]}\n{X.shape[1]}\n{X.nnz}\n{body}")
    return path


def test_an_lda_model_keeps_its_vocabulary_and_transforms_documents(tmp_path):
    from dpsgd.data import make_lda_corpus

    X, _, _ = make_lda_corpus(300, 40, 4, 30, random_state=0)
    corpus = write_docword(tmp_path / "docword.toy.txt", X)
    words = [f"word{i}" for i in range(40)]
    (tmp_path / "vocab.toy.txt").write_text("\n".join(words) + "\n")
    model = tmp_path / "lda.npz"
    out = run("train", "lda", "--corpus", corpus, "--vocab", tmp_path / "vocab.toy.txt", "--topics", 4,
              "--passes", 2, "--threads", 1, "--quiet", "--save", model, "--reseed-topics")
    assert out.returncode == 0, out.stderr
    lda = load_model(model)
    assert lda.reseed_topics is True
    shown = run("topics", model, "--top-words", 3)  # no vocabulary file: the model's own
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 4 and all(w.startswith("word") for line in lines for w in line.split(":")[1].split())
    (tmp_path / "other_vocab.txt").write_text("\n".join(f"other{i}" for i in range(40)) + "\n")
    assert "other" in run("topics", model, "--vocab", tmp_path / "other_vocab.txt").stdout  # --vocab wins
    transformed = run("transform", model, corpus, "--output", tmp_path / "theta.txt")
    assert transformed.returncode == 0, transformed.stderr
    theta = np.loadtxt(tmp_path / "theta.txt")
    assert theta.shape == (300, 4) and np.allclose(theta.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(theta, lda.transform(X), rtol=1e-6, atol=1e-9)


def test_reseed_topics_is_off_unless_asked(tmp_path):
    assert main(["train", "lda", "--docs", "60", "--words", "30", "--passes", "1", "--threads", "1", "--quiet",
                 "--save", str(tmp_path / "lda.npz")]) == 0
    assert load_model(tmp_path / "lda.npz").reseed_topics is False


def test_progress_in_a_log_is_plain_lines_not_frames():
    stream = io.StringIO()  # not a terminal, like a Slurm log
    progress = Progress(1000, "documents", stream=stream)
    progress.interval = 0.05
    for _ in range(10):
        progress.update(100)
        time.sleep(0.01)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 2 <= len(lines) <= 4
    assert lines[-1].startswith("training: 1000/1000 documents (100%)") and "documents/s" in lines[-1]


def test_lda_progress_counts_documents_and_writes_no_carriage_returns():
    out = run("train", "lda", "--docs", "300", "--words", "50", "--passes", "2", "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "documents/s" in out.stderr


@pytest.mark.parametrize("command", ["predict", "train"])
def test_a_closed_pipe_ends_quietly(command, linear_model):
    """`dpsgd ... | head -1`: exit 141 (128 + SIGPIPE) and no BrokenPipeError traceback.

    The reader is gone before the first write (how much a pipe holds before the writer
    notices varies), so every write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with a9a_test_file() as data:
        args = (["predict", str(linear_model), str(data), "--proba"] if command == "predict" else
                ["train", "lda", "--docs", "100", "--words", "30", "--passes", "1", "--threads", "1"])
        proc = subprocess.run([sys.executable, "-m", "dpsgd", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_ctrl_c_exits_130_and_keeps_the_last_checkpoint(tmp_path):
    from dpsgd.persist import read_npz

    ck = tmp_path / "ck.npz"
    # a job started in the background by a shell without job control inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: give the child Ctrl-C's default, as
    # a terminal does (two CI runs hung here after the first Ctrl-C; the cause is not established)
    proc = subprocess.Popen([sys.executable, "-m", "dpsgd", "train", "lda", "--docs", "600", "--words", "60",
                             "--passes", "100000", "--threads", "1", "--quiet", "--checkpoint", str(ck)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not ck.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never left running (100,000 passes) after a failure
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"interrupted; the last checkpoint is {ck}" in err
    arrays, meta = read_npz(ck)  # whole: written to a temporary file and renamed
    assert arrays["components_"].shape == (10, 60) and meta["passes_done"] >= 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]
    resumed = run("train", "lda", "--docs", 600, "--words", 60, "--passes", meta["passes_done"] + 1,
                  "--threads", 1, "--quiet", "--resume", ck)
    assert resumed.returncode == 0, resumed.stderr


def test_info_under_mpiexec_prints_once_and_counts_the_ranks():
    from conftest import run_mpi

    out = run_mpi("dpsgd", 2, "info", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("dpsgd ") == 1 and out.stdout.count("MPI:") == 1
    assert f"ranks: {out.ranks}" in out.stdout


def test_info_in_one_process_says_one_rank():
    out = run("info")
    assert out.returncode == 0 and "ranks: 1" in out.stdout


def test_single_process_says_which_options_it_ignores():
    out = run("train", "linear", "--epochs", "1", "--threads", "1", "--quiet", "--sync-every", "512")
    assert out.returncode == 0, out.stderr
    assert "one process ignores --sync-every" in out.stderr


def test_resume_reads_a_file_that_stops_short_of_the_last_column(tmp_path):
    """The checkpoint knows its features: a resumed run on a file whose largest index is
    smaller reads it with the checkpoint's width instead of failing to reshape."""
    rng = np.random.default_rng(1)
    rows = [f"{1 if j < 6 else -1} {j}:1 {j + 2}:1" for j in rng.integers(1, 10, 200)]
    (tmp_path / "a.svm").write_text("\n".join(rows + ["1 12:1"]) + "\n")
    (tmp_path / "b.svm").write_text("\n".join(rows) + "\n")
    ck = tmp_path / "ck.npz"
    common = ["--threads", "1", "--quiet", "--alpha", "1e-3"]
    assert run("train", "linear", "--data", tmp_path / "a.svm", "--epochs", 2, "--checkpoint", ck, *common).returncode == 0
    out = run("train", "linear", "--data", tmp_path / "b.svm", "--epochs", 4, "--resume", ck, *common)
    assert out.returncode == 0, out.stderr
    assert "200 rows x 12 features" in out.stdout
