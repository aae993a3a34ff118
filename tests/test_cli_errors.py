"""Bad invocations of the dpsgd command: each ends with ``dpsgd...: error: ...`` naming the user's
own option or path, exit code 2, no traceback, and no work done first.

Most cases call ``dpsgd.cli.main`` in this process (an exception escaping it fails the test as a
traceback would); a few run the real command to check what a shell sees.
"""

import gzip
import re
import subprocess
import sys

import numpy as np
import pytest

from dpsgd.cli import main

ERROR = re.compile(r"^dpsgd( [a-z]+)*( \(rank \d+ of \d+\))?: error: ", re.MULTILINE)


def svm(path, labels, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for label in labels:
        features = sorted(rng.choice(n_features, 2, replace=False) + 1)
        lines.append(f"{label:g} " + " ".join(f"{j}:1" for j in features))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs of every kind, good and broken, and a model and a checkpoint of each task."""
    d = tmp_path_factory.mktemp("cli-errors")
    f = {"dir": d / "folder"}
    f["dir"].mkdir()
    f["pm"] = svm(d / "pm.svm", [1, -1] * 20)
    f["zero_one"] = svm(d / "zero_one.svm", [1, 0] * 5)
    f["three"] = svm(d / "three.svm", [1, 2, 3] * 10)
    f["wide"] = svm(d / "wide.svm", [1, -1] * 10, n_features=9)
    (d / "bad.svm.gz").write_bytes(b"not gzip at all")
    (d / "bad.svm.bz2").write_bytes(b"not bzip2 at all")
    whole = gzip.compress(b"1 1:1\n-1 2:1\n" * 2000)
    (d / "truncated.svm.gz").write_bytes(whole[:len(whole) // 2])
    (d / "big_index.svm").write_text("1 2147483648:1\n-1 2:1\n")
    (d / "big_count.txt").write_text("2\n2\n2\n1 1 9223372036854775808\n2 2 1\n")
    (d / "docword.txt").write_text("3\n4\n4\n1 1 2\n1 2 1\n2 3 4\n3 4 1\n")
    (d / "vocab5.txt").write_text("a\nb\nc\nd\ne\n")
    (d / "garbage.npz").write_bytes(b"this is no zip archive")
    f.update({k: d / name for k, name in [("bad_gz", "bad.svm.gz"), ("bad_bz2", "bad.svm.bz2"),
                                            ("truncated_gz", "truncated.svm.gz"), ("big_index", "big_index.svm"),
                                            ("big_count", "big_count.txt"), ("docword", "docword.txt"),
                                            ("vocab5", "vocab5.txt"), ("garbage", "garbage.npz")]})
    f["linear_model"], f["linear_ck"] = d / "linear.npz", d / "linear_ck.npz"
    f["hinge_model"] = d / "hinge.npz"
    f["lda_model"], f["lda_ck"] = d / "lda.npz", d / "lda_ck.npz"
    assert main(["train", "linear", "--data", str(f["pm"]), "--epochs", "2", "--threads", "1", "--quiet",
                 "--save", str(f["linear_model"]), "--checkpoint", str(f["linear_ck"])]) == 0
    assert main(["train", "linear", "--data", str(f["pm"]), "--epochs", "1", "--threads", "1", "--quiet",
                 "--loss", "hinge", "--save", str(f["hinge_model"])]) == 0
    assert main(["train", "lda", "--docs", "60", "--words", "30", "--passes", "1", "--threads", "1", "--quiet",
                 "--save", str(f["lda_model"]), "--checkpoint", str(f["lda_ck"])]) == 0
    truncated = f["linear_ck"].read_bytes()
    (d / "truncated_ck.npz").write_bytes(truncated[:len(truncated) // 2])
    f["truncated_ck"] = d / "truncated_ck.npz"
    arrays = dict(np.load(f["linear_ck"]))
    del arrays["coef_"]
    np.savez(d / "no_coef.npz", **arrays)
    f["no_coef"] = d / "no_coef.npz"
    return f


# (command line with {placeholders} for the files above, words the message must hold)
CASES = {
    # options that would be ignored, or need another
    "test without data": ("train linear --test {pm}", "--test needs --data"),
    "n-features without data": ("train linear --n-features 5", "--n-features needs --data"),
    "vocab without corpus": ("train lda --vocab {vocab5}", "--vocab needs --corpus"),
    "docs with corpus": ("train lda --corpus {docword} --docs 5", "--docs"),
    "words with corpus": ("train lda --corpus {docword} --words 5", "--words"),
    "checkpoint-every without checkpoint": ("train linear --checkpoint-every 2", "--checkpoint-every needs"),
    "tau-max without fixed_for_delay": ("train linear --tau-max 3", "--tau-max"),
    "policy-alpha with none": ("train linear --step-policy none --policy-alpha 0.5", "--policy-alpha"),
    "eta0 with optimal": ("train linear --eta0 0.1", "--eta0"),
    "scores and proba": ("predict {linear_model} {pm} --scores --proba", "not allowed with"),
    # numbers, checked as they are parsed
    "checkpoint-every 0": ("train linear --checkpoint {out}/ck.npz --checkpoint-every 0", "--checkpoint-every"),
    "epochs 0": ("train linear --epochs 0", "--epochs"),
    "epochs -1": ("train linear --epochs -1", "--epochs"),
    "epochs text": ("train linear --epochs many", "--epochs"),
    "passes 0": ("train lda --passes 0", "--passes"),
    "topics 0": ("train lda --topics 0", "--topics"),
    "batch-size 0": ("train lda --batch-size 0", "--batch-size"),
    "threads 0": ("train lda --threads 0", "--threads"),
    "docs 0": ("train lda --docs 0", "--docs"),
    "docs 1": ("train lda --docs 1", "at least 2"),
    "words -3": ("train lda --words -3", "--words"),
    "top-words 0": ("train lda --top-words 0", "--top-words"),
    "max-seconds 0": ("train linear --max-seconds 0", "--max-seconds"),
    "max-seconds nan": ("train linear --max-seconds nan", "--max-seconds"),
    "max-updates 0": ("train lda --max-updates 0", "--max-updates"),
    "sync-every 0": ("train linear --sync-every 0", "--sync-every"),
    "alpha -1": ("train linear --alpha -1", "--alpha"),
    "eta0 0": ("train linear --learning-rate constant --eta0 0", "--eta0"),
    "policy-alpha 2": ("train linear --policy-alpha 2", "--policy-alpha"),
    "tau-max -1": ("train linear --step-policy fixed_for_delay --tau-max -1", "--tau-max"),
    "n-features 0": ("train linear --data {pm} --n-features 0", "--n-features"),
    "topics 1e9": ("train lda --topics 1000000000", "GiB"),
    "a typo in a subcommand option": ("train linear --epoch 3", "unrecognized arguments: --epoch"),
    "an unknown command": ("trian linear", "invalid choice"),
    # output paths, before any work
    "save in a missing folder": ("train linear --save {out}/nodir/model.npz", "nodir does not exist"),
    "checkpoint in a missing folder": ("train linear --checkpoint {out}/nodir/ck.npz", "nodir does not exist"),
    "log-json in a missing folder": ("train lda --log-json {out}/nodir/log.jsonl", "nodir does not exist"),
    "save names a directory": ("train linear --save {dir}", "is a directory"),
    "checkpoint names a directory": ("train lda --checkpoint {dir}", "is a directory"),
    "save over the checkpoint": ("train linear --save {out}/a.npz --checkpoint {out}/a.npz", "the same file"),
    "output names a directory": ("predict {linear_model} {pm} --output {dir}", "is a directory"),
    # inputs
    "data missing": ("train linear --data {out}/absent.svm", "absent.svm: no such file"),
    "corpus missing": ("train lda --corpus {out}/absent.txt", "absent.txt: no such file"),
    "data is a directory": ("train linear --data {dir}", "is a directory"),
    "corpus is a directory": ("train lda --corpus {dir}", "is a directory"),
    "resume is a directory": ("train linear --resume {dir}", "is a directory"),
    "not gzip": ("train linear --data {bad_gz}", "bad.svm.gz"),
    "not bzip2": ("train linear --data {bad_bz2}", "bad.svm.bz2"),
    "truncated gzip": ("train linear --data {truncated_gz}", "truncated.svm.gz"),
    "an index past 2**31": ("train linear --data {big_index}", "big_index.svm"),
    "a count past 2**63": ("train lda --corpus {big_count}", "big_count.txt"),
    "a vocabulary of the wrong length": ("train lda --corpus {docword} --vocab {vocab5}", "vocab5.txt"),
    # checkpoints
    "a truncated checkpoint": ("train linear --epochs 5 --resume {truncated_ck}", "truncated_ck.npz"),
    "a checkpoint without coef_": ("train linear --epochs 5 --resume {no_coef}", "lacks coef_"),
    "no zip at all": ("train linear --epochs 5 --resume {garbage}", "garbage.npz"),
    "a model, not a checkpoint": ("train linear --epochs 5 --resume {linear_model}", "model file, not a checkpoint"),
    "a checkpoint of the other task": ("train linear --epochs 5 --resume {lda_ck}", "not of 'train linear'"),
    "nothing left to run": ("train linear --data {pm} --epochs 2 --resume {linear_ck}",
                            "leaves nothing to run"),
    "resume on other features": ("train linear --epochs 5 --resume {linear_ck}", "4 features, this data has 123"),
    "resume on other labels": ("train linear --data {three} --epochs 5 --resume {linear_ck}", "labels"),
    "resume on wider data": ("train linear --data {wide} --epochs 5 --resume {linear_ck}", "checkpoint's"),
    "resume lda with other topics": ("train lda --docs 60 --words 30 --topics 3 --passes 3 --resume {lda_ck}",
                                     "topics are (10, 30)"),
    # test labels the model cannot predict: refused before training
    "0/1 test labels against -1/+1": ("train linear --data {pm} --test {zero_one}", "labels {0}"),
    "a test label never trained": ("train linear --data {pm} --test {three}", "not among the training labels"),
    # the model commands
    "predict with a topic model": ("predict {lda_model} {pm}", "dpsgd transform"),
    "transform with a linear model": ("transform {linear_model} {docword}", "dpsgd predict"),
    "topics of a linear model": ("topics {linear_model}", "LatentDirichletAllocation"),
    "predict from a missing model": ("predict {out}/absent.npz {pm}", "absent.npz"),
    "predict from garbage": ("predict {garbage} {pm}", "garbage.npz"),
    "predict data wider than the model": ("predict {linear_model} {wide}", "wide.svm"),
    "proba of a hinge model": ("predict {hinge_model} {pm} --proba", "no probabilities"),
    "transform another vocabulary": ("transform {lda_model} {docword}", "4 words"),
    "topics with the wrong vocabulary": ("topics {lda_model} --vocab {vocab5}", "5 words"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_invocation_is_an_error_not_a_traceback(case, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line, expected = CASES[case]
    argv = line.format(out=tmp_path, **{k: str(v) for k, v in files.items()}).split()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert ERROR.search(err), err
    assert expected in err, err
    assert "result:" not in out  # nothing was trained or reported first
    assert not list(tmp_path.iterdir())  # and nothing written


def run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "dpsgd", *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_a_shell_sees_exit_code_2_and_one_line(tmp_path):
    out = run("train", "linear", "--save", tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"dpsgd: error: --save {tmp_path}: is a directory; give a file name"


def test_a_typo_shows_the_subcommand_usage():
    out = run("train", "linear", "--epoch", "3")
    assert out.returncode == 2
    assert out.stderr.startswith("usage: dpsgd train linear ")
    assert "dpsgd train linear: error: unrecognized arguments: --epoch 3" in out.stderr


def test_version():
    import dpsgd

    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"dpsgd {dpsgd.__version__}"


def test_every_option_has_help_that_shows_its_default():
    import argparse

    from dpsgd.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from parsers(child)

    seen = 0
    for parser in parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            seen += 1
            assert action.help, f"{parser.prog} {action.option_strings or action.dest} has no help"
            if action.option_strings:
                shown = parser.formatter_class(parser.prog)._get_help_string(action)
                assert "%(default)s" in shown, f"{parser.prog} {action.option_strings} shows no default"
        assert "(default: 20)" in text or parser.prog != "dpsgd train linear"
    assert seen > 50
