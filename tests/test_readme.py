"""Every example in README.md and in the documentation's pages runs as written, and so do the
scripts in examples/.

The ```python blocks of README.md and of docs/**/*.md (the pages the README's sections moved to)
run as scripts (under ``mpiexec -n 2`` when they import mpi4py) and their ```bash blocks line
by line, each block in a fresh folder holding the files the examples name: ``train.svm`` / ``test.svm`` (the bundled a9a) and ``docword.ap.txt`` / ``vocab.ap.txt``
(AP, from ../shared/data; blocks that use it are skipped with the reason where it is absent).
Lines that install (``pip install``, ``python3 -m venv``) are left out. To keep the whole file
near 3 minutes on 2 cores, the test runs fewer passes and ranks than the pages show, only
through the table ``SUBSTITUTIONS`` below; nothing else is changed. (The gallery, examples/plot_*.py,
runs in the documentation's build: .ci/run.) The examples in the docstrings of ``DOCTESTED``
run too, as doctests.
"""

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
# the pages whose examples run: the README, then the documentation's Markdown pages
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
AP = SHARED_DATA / "ap_associated_press"

# (as the README writes it, as the test runs it, why)
SUBSTITUTIONS = [
    ("mpiexec -n 4", "mpiexec -n 2", "the test machine has 2 cores"),
    ("--passes 10", "--passes 2", "10 passes over AP take about 40 s on 2 cores; the resume pair "
                                   "5 then 10 becomes 1 then 2"),
    ("--passes 5", "--passes 1", "see --passes 10"),
    ("max_iter=10, batch_size", "max_iter=2, batch_size", "the Python LDA example on AP, as --passes"),
    ("max_iter=5, n_threads", "max_iter=1, n_threads", "the distributed Python LDA example on AP"),
]
TIMEOUT = 150
# shell lines left out: (what the line holds, why)
LEFT_OUT = [("pip install", "installs packages"), ("-m venv", "makes a virtual environment"),
            ("cmake ", "a CMake build takes minutes; CI's sanitizer job runs it")]


def substitute(text):
    for old, new, _ in SUBSTITUTIONS:
        text = text.replace(old, new)
    return text


def page_id(page):
    """``readme``, or the page's path under docs/ without its suffix (``guide-l1_models``)."""
    if page.name == "README.md":
        return "readme"
    return "-".join(page.relative_to(ROOT / "docs").with_suffix("").parts)


def readme_blocks():
    """(id, language, code) of every ```python and ```bash block of ``PAGES``, the id naming its
    page and section."""
    blocks, counts = [], {}
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"^```(python|bash)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
            headings = re.findall(r"^##+ (.+)$", text[:match.start()], re.MULTILINE)
            section = re.sub(r"\W+", "-", headings[-1] if headings else "top").strip("-").lower()
            name = f"{page_id(page)}-{section}"
            counts[name] = counts.get(name, 0) + 1
            blocks.append(pytest.param(match.group(1), match.group(2), id=f"{name}-{counts[name]}"))
    return blocks


def shell_commands(code):
    """The block's commands (continuation lines joined, comments left out), and the reasons
    for the lines in ``LEFT_OUT``."""
    commands, reasons = [], set()
    for line in code.replace("\\\n", " ").splitlines():
        line = line.strip()
        why = [reason for text, reason in LEFT_OUT if text in line]
        reasons.update(why)
        if line and not line.startswith("#") and not why:
            commands.append(line)
    return commands, reasons


def workdir(tmp_path, code):
    """Put the files that ``code`` names into ``tmp_path``."""
    from importlib import resources

    for name, bundled in (("train.svm", "a9a.svm.gz"), ("test.svm", "a9a.t.svm.gz")):
        with resources.as_file(resources.files("dpsgd.data") / "a9a" / bundled) as src, gzip.open(src) as f:
            (tmp_path / name).write_bytes(f.read())
    if ".ap.txt" in code:
        if not AP.exists():
            pytest.skip(f"{AP} is absent (the shared data folder is not next to this checkout)")
        for name in ("docword.ap.txt", "vocab.ap.txt"):
            (tmp_path / name).symlink_to(AP / name)
    return tmp_path


def environment():
    """This interpreter's bin folder (dpsgd, mpiexec) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def needs_mpi(code):
    if "mpiexec" in code or "mpi4py" in code:
        pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'dpsgd[mpi]')")
        if shutil.which("mpiexec", path=environment()["PATH"]) is None:
            pytest.skip("no mpiexec (pip install mpich)")


def check(out, what):
    assert out.returncode == 0, f"{what}\nexit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize(("language", "code"), readme_blocks())
def test_readme_example_runs(language, code, tmp_path):
    code = substitute(code)
    needs_mpi(code)
    here = workdir(tmp_path, code)
    env = environment()
    if language == "python":
        (here / "example.py").write_text(code)
        command = [sys.executable, "example.py"]
        if "mpi4py" in code:
            command = ["mpiexec", "-n", "2", *command]
        check(subprocess.run(command, cwd=here, env=env, capture_output=True, text=True, timeout=TIMEOUT), code)
    elif code.startswith("#!/bin/bash"):  # a batch script: run whole, in a pretend allocation of 2 tasks
        activate = Path(sys.prefix) / "bin" / "activate"
        if not activate.exists():
            pytest.skip(f"{sys.prefix} is not a virtual environment (the script sources .venv/bin/activate)")
        (here / ".venv").symlink_to(sys.prefix)
        (here / "job.sh").write_text(code)
        env.update(SLURM_NTASKS="2", SLURM_CPUS_PER_TASK="1", SLURM_JOB_ID="1")
        check(subprocess.run(["bash", "job.sh"], cwd=here, env=env, capture_output=True, text=True,
                             timeout=TIMEOUT), code)
    else:
        commands, reasons = shell_commands(code)
        if not commands:
            pytest.skip("every line is left out: " + "; ".join(sorted(reasons)))
        for line in commands:
            check(subprocess.run(["bash", "-c", line], cwd=here, env=env, capture_output=True, text=True,
                                 timeout=TIMEOUT), line)


def test_the_substitutions_still_match_the_readme():
    """A substitution that matches nothing would silently run the pages' full settings."""
    text = "".join(page.read_text() for page in PAGES)
    for old, _, _ in SUBSTITUTIONS:
        assert old in text, f"{old!r} no longer appears in README.md or docs/: update SUBSTITUTIONS"


def test_the_pages_have_examples():
    """The pages are found (a moved docs/ folder would silently run nothing)."""
    assert len(PAGES) > 10 and len(readme_blocks()) > 15


EXAMPLES = [
    ("distributed_lda.py", ["--passes", "2"]),
    ("distributed_linear.py", ["train.svm", "--test", "test.svm", "--epochs", "3"]),
    ("new_task.py", ["--exchange", "allreduce"]),  # a task of one problem and one estimator
]


@pytest.mark.parametrize(("script", "args"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_script_runs_under_mpiexec(script, args, tmp_path):
    needs_mpi("mpiexec")
    here = workdir(tmp_path, "")
    out = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(ROOT / "examples" / script), *args],
                         cwd=here, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    check(out, script)
    assert "2 ranks" in out.stdout and "saved" in out.stdout
    assert len(list(here.glob("*-example.npz"))) == 1  # rank 0 alone saved the model


def test_slurm_batch_file_runs_in_a_pretend_allocation(tmp_path):
    needs_mpi("mpiexec")
    env = environment()
    env.update(SLURM_NTASKS="2", SLURM_CPUS_PER_TASK="1", SLURM_JOB_ID="7", VENV=sys.prefix,
               TOPICS="5", PASSES="2")
    if not (Path(sys.prefix) / "bin" / "activate").exists():
        pytest.skip(f"{sys.prefix} is not a virtual environment (the batch file activates one)")
    out = subprocess.run(["bash", str(ROOT / "examples" / "slurm_lda.sbatch")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    check(out, "slurm_lda.sbatch")
    assert "x 2 ranks" in out.stdout and "\r" not in out.stderr  # a log gets lines, not frames
    assert {p.name for p in tmp_path.iterdir()} == {"lda-7.jsonl", "lda-7-ck.npz", "lda-7.npz"}


# the modules whose docstrings hold runnable examples (numpydoc "Examples" sections), as the
# API reference shows them; examples that need files or MPI are marked ``# doctest: +SKIP``
DOCTESTED = ["dpsgd.data.svmlight", "dpsgd.data.uci_bow", "dpsgd.data.shards",
             "dpsgd.data.synthetic", "dpsgd.evaluation", "dpsgd.plotting", "dpsgd.persist",
             "dpsgd.stepsize", "dpsgd.envs", "dpsgd.envs.spaces", "dpsgd.envs.vector", "dpsgd.comm",
             "dpsgd.comm.failure", "dpsgd.comm.topology", "dpsgd.comm.window", "dpsgd.comm.local",
             "dpsgd.comm.codecs", "dpsgd.comm.network", "dpsgd.comm.exchange", "dpsgd.comm.virtual", "dpsgd.cli.parser",
             "dpsgd.progress", "dpsgd.tasks.lda", "dpsgd.tasks.a2c", "dpsgd.tasks.logistic",
             "dpsgd.tasks.linear_problem", "dpsgd.tasks.linear", "dpsgd.engine.loop", "dpsgd.engine.problem",
             "dpsgd.engine.limits", "dpsgd.engine.stats", "dpsgd._threads"]


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    if module == "dpsgd.plotting":
        pytest.importorskip("matplotlib", reason="dpsgd.plotting's examples draw (pip install 'dpsgd[plot]')")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {module} failed (see above)"
