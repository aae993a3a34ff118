"""``dpsgd train prox``: in one process (in-process ``main``) and under a real ``mpiexec -n 2``."""

import json
import re

import numpy as np
import pytest

from dpsgd import LogisticRegression, load_model
from dpsgd.cli import main
from dpsgd.data import load_svmlight


def write_svmlight(path, n, seed, n_classes=2):
    """Rows of 5 of 30 binary features; the label follows a sparse rule, with some noise."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        features = np.sort(rng.choice(30, 5, replace=False))
        score = int(features[0] < 6) + int(features[1] < 12) + (rng.random() < 0.1)
        label = (2 * (score % 2) - 1) if n_classes == 2 else score % n_classes
        lines.append(f"{label} " + " ".join(f"{j + 1}:1" for j in features))
    path.write_text("\n".join(lines) + "\n")
    return path


def result_of(out):
    return next(line for line in out.splitlines() if line.startswith("result:"))


def number(line, key):
    return float(re.search(rf"{key} ([-0-9.e+]+)", line).group(1))


def test_one_process_saves_a_model_logs_and_reports(tmp_path, capsys):
    train, test = write_svmlight(tmp_path / "train.svm", 400, 0), write_svmlight(tmp_path / "test.svm", 200, 1)
    model, log = tmp_path / "model.npz", tmp_path / "run.jsonl"
    code = main(["train", "prox", "--data", str(train), "--test", str(test), "--C", "0.5", "--threads", "1",
                 "--tol", "1e-6", "--max-iter", "500", "--save", str(model), "--log-json", str(log), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    line = result_of(out)
    assert "solver async_bcd (1 thread)" in line and "delay mean 0.00" in line and "test accuracy" in line
    clf = load_model(model)
    assert isinstance(clf, LogisticRegression) and clf.coef_.shape == (1, 30) and clf.C == 0.5
    assert f"non-zeros {np.count_nonzero(clf.coef_)} of 30" in line
    X, y = load_svmlight(train)
    assert number(line, "train accuracy") == pytest.approx(clf.score(X, y), abs=1e-4)
    # the same fit through the estimator: one thread with the same seed is bit-identical
    same = LogisticRegression(C=0.5, n_threads=1, tol=1e-6, max_iter=500, random_state=0).fit(X, y)
    np.testing.assert_array_equal(same.coef_, clf.coef_)
    assert number(line, "objective") == pytest.approx(same.objective_history_["objective"][-1], rel=1e-9)
    records = [json.loads(r) for r in log.read_text().splitlines()]
    assert len(records) == len(same.objective_history_)
    assert {"time", "updates", "objective", "delay", "step", "classifier"} <= set(records[0])


def test_bundled_a9a_with_piag_and_several_classes(tmp_path, capsys):
    assert main(["train", "prox", "--solver", "piag", "--C", "0.005", "--max-iter", "30", "--threads", "1",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "bundled a9a" in out and "solver piag (1 thread)" in out
    assert number(result_of(out), "test accuracy") > 0.8
    data = write_svmlight(tmp_path / "three.svm", 300, 2, n_classes=3)
    assert main(["train", "prox", "--data", str(data), "--threads", "1", "--max-iter", "20", "--quiet"]) == 0
    assert "(sum of 3 one-vs-rest problems)" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--l1-ratio", "0.5"], "--l1-ratio is used only by --penalty elasticnet"),
    (["--penalty", "elasticnet"], "--penalty elasticnet needs --l1-ratio"),
    (["--step-policy", "fixed"], "--step-policy fixed needs --tau-max"),
    (["--tau-max", "4"], "--tau-max is used only by --step-policy fixed"),
    (["--step-policy", "fixed", "--tau-max", "4", "--policy-alpha", "0.5"], "--policy-alpha is used only by"),
    (["--test", "x.svm"], "--test needs --data"),
    (["--solver", "piag", "--n-blocks", "3"], "--n-blocks is used only by --solver async_bcd"),
    (["--data", "absent.svm"], "--data absent.svm: no such file"),
])
def test_mistakes_end_with_a_usage_error(args, message, capsys):
    assert main(["train", "prox", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text", ["1.5", "-0.1", "x"])
def test_bad_numbers_are_refused_as_they_are_parsed(text, capsys):
    with pytest.raises(SystemExit):
        main(["train", "prox", "--l1-ratio", text])
    assert "--l1-ratio" in capsys.readouterr().err


@pytest.mark.parametrize("solver", ["piag", "async_bcd"])
def test_under_mpiexec_each_rank_reads_a_share_of_a_file(tmp_path, solver):
    """3 classes in a file sorted by label: the second rank's share holds only the last class,
    so the ranks must agree on the classes before the one-vs-rest problems. async_bcd deals
    the 30 features' 10 blocks out to the ranks."""
    from conftest import run_mpi

    train = write_svmlight(tmp_path / "train.svm", 400, 0, n_classes=3)
    train.write_text("\n".join(sorted(train.read_text().splitlines(), key=lambda r: int(r.split()[0]))) + "\n")
    test = write_svmlight(tmp_path / "test.svm", 200, 1, n_classes=3)
    out = run_mpi("dpsgd", 2, "train", "prox", "--solver", solver, "--data", train, "--test", test, "--C", "0.5",
                  "--max-iter", 4000, "--threads", 1,
                  "--tol", "1e-6", "--save", tmp_path / "model.npz", "--log-json", tmp_path / "run.jsonl", "--quiet",
                  timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("result:") == 1 and f"400 rows x 30 features, {out.ranks} ranks" in out.stdout
    line = result_of(out.stdout)
    assert f"solver {solver} ({out.ranks} ranks x 1 thread)" in line and "delay mean" in line and "test accuracy" in line
    # the ranks reach the optimum one process finds
    X, y = load_svmlight(train)
    alone = LogisticRegression(C=0.5, n_threads=1, tol=1e-8, max_iter=5000).fit(X, y)
    P = sum(alone.objective_history_["objective"][alone.objective_history_["classifier"] == k][-1] for k in range(3))
    assert number(line, "objective") == pytest.approx(P, rel=1e-4 * out.ranks)
    clf = load_model(tmp_path / "model.npz")
    assert clf.comm is None and clf.classes_.tolist() == [0, 1, 2] and clf.coef_.shape == (3, 30)
    assert clf.score(X, y) == pytest.approx(alone.score(X, y), abs=0.02)
    records = [json.loads(r) for r in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert {r["classifier"] for r in records} == {0, 1, 2}


def test_predict_uses_a_saved_prox_model(tmp_path, capsys):
    """`dpsgd predict` takes a LogisticRegression model: its probabilities are predict_proba's."""
    train, test = write_svmlight(tmp_path / "train.svm", 300, 0), write_svmlight(tmp_path / "test.svm", 50, 1)
    model = tmp_path / "model.npz"
    assert main(["train", "prox", "--data", str(train), "--threads", "1", "--max-iter", "30", "--quiet",
                 "--save", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(test), "--proba", "--quiet"]) == 0
    printed = np.loadtxt(capsys.readouterr().out.splitlines(), ndmin=2)
    X, _ = load_svmlight(str(test), n_features=30)
    np.testing.assert_allclose(printed, load_model(model).predict_proba(X), atol=1e-9)
