"""`dpsgd plot` and dpsgd.plotting: learning curves from the logs that `train ... --log-json`
writes. The logs are real: short runs of the command. Tests that draw need matplotlib (the
`plot` extra) and are skipped without it; the errors, reading and the missing-matplotlib
message are tested either way."""

import json
import re
import subprocess
import sys

import pytest

from conftest import run_mpi
from dpsgd.cli import main
from dpsgd.plotting import plot_runs, read_log

ERROR = re.compile(r"^dpsgd( \(rank \d+ of \d+\))?: error: ")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Two linear runs of 2 epochs (1 and 2 threads) and an LDA run of 1 pass (one line)."""
    d = tmp_path_factory.mktemp("logs")
    runs = {"one": ["train", "linear", "--epochs", "2", "--threads", "1"],
            "two": ["train", "linear", "--epochs", "2", "--threads", "2"],
            "lda": ["train", "lda", "--passes", "1", "--docs", "300", "--threads", "1"]}
    paths = {}
    for name, argv in runs.items():
        paths[name] = d / f"{name}.jsonl"
        assert main([*argv, "--quiet", "--log-json", str(paths[name])]) == 0
    return paths


def lines_per_axes(fig):
    return {ax.get_label(): len(ax.get_lines()) for ax in fig.axes}


def hide_matplotlib(monkeypatch):
    """Make ``import matplotlib`` (and its submodules, even if already imported) fail."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)


def usage_error(argv, capsys):
    """stderr of ``dpsgd ARGV``, which must end as a usage error: exit code 2, nothing on stdout."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    return err


# ---------------------------------------------------------------------------- read_log
def test_read_log_reads_the_logs_of_both_tasks(logs):
    linear, lda = read_log(logs["one"]), read_log(logs["lda"])
    assert [r["epoch"] for r in linear] == [1, 2] and linear[1]["updates"] > linear[0]["updates"] > 0
    assert {"time", "loss", "test_log_loss"} <= set(linear[0])
    assert len(lda) == 1 and lda[0]["pass"] == 1 and {"perplexity", "heldout_log_likelihood"} <= set(lda[0])


def test_read_log_keeps_unknown_keys_and_skips_blank_lines(tmp_path):
    path = tmp_path / "new.jsonl"
    records = [{"time": 0.5, "pass": 1, "samples": 100, "updates": 10, "n_threads": 2, "exchange": "ring",
                "delay_histogram": [3, 1], "loss": 0.7},
               {"time": 1.0, "pass": 2, "samples": 200, "updates": 20, "n_threads": 2, "exchange": "ring",
                "delay_histogram": [2, 2], "loss": 0.5}]
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n\n")
    assert read_log(path) == records


# (the file's bytes, what the error says after the file's name), by case
BAD_LOGS = [pytest.param(b'{"time": 1, "updates": 2}\n{"time": 2, "upd', "line 2: not JSON", id="truncated"),
            pytest.param(b"[1, 2]\n", "line 1: a JSON list, not an object", id="a list"),
            pytest.param(b'{"time": 1, "updates": 2}\n3\n', "line 2: a JSON int, not an object", id="a number"),
            pytest.param(b'{"epoch": 1, "updates": 2}\n', "line 1: no number 'time'", id="no time"),
            pytest.param(b'{"time": 1.5, "epoch": 1}\n', "line 1: no number 'updates'", id="no updates"),
            pytest.param(b'{"time": 1.5, "updates": "many"}\n', "line 1: no number 'updates'", id="text updates"),
            pytest.param(b"", "the log is empty", id="empty"),
            pytest.param(b"\n  \n", "the log is empty", id="blank lines only"),
            pytest.param(b"\x89PNG\r\n\x1a\n\xff\xfe", "line 1: not UTF-8 text", id="not text")]


@pytest.mark.parametrize(("content", "expected"), BAD_LOGS)
def test_a_bad_log_names_its_file_and_line_and_is_a_usage_error(content, expected, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        read_log(path)
    assert str(info.value).startswith(str(path))
    err = usage_error(["plot", path, "-o", tmp_path / "c.png"], capsys)
    assert err == f"dpsgd: error: {info.value}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


def test_read_log_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "absent.jsonl")


# ---------------------------------------------------------------------------- plot_runs
def test_two_runs_overlaid_give_two_lines_on_every_axes(logs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curve.png"
    fig = plot_runs([logs["one"], logs["two"]], out)
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000
    assert lines_per_axes(fig) == {"loss vs time": 2, "loss vs updates": 2, "test_log_loss vs time": 2,
                                   "test_log_loss vs updates": 2, "throughput vs time": 2}
    loss = next(ax for ax in fig.axes if ax.get_label() == "loss vs updates")
    one = read_log(logs["one"])
    assert list(loss.get_lines()[0].get_xdata()) == [r["updates"] for r in one]
    assert list(loss.get_lines()[0].get_ydata()) == [r["loss"] for r in one]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["one", "two"]
    throughput = next(ax for ax in fig.axes if ax.get_label() == "throughput vs time")
    rate = (one[1]["updates"] - one[0]["updates"]) / (one[1]["time"] - one[0]["time"])
    assert list(throughput.get_lines()[0].get_ydata()) == [rate, rate]
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary file left


def test_both_tasks_overlaid_each_metric_with_its_direction(logs, tmp_path):
    pytest.importorskip("matplotlib")
    fig = plot_runs([logs["one"], logs["lda"]], tmp_path / "both.png", labels=["linear", "LDA"])
    lines = lines_per_axes(fig)
    assert len(lines) == 4 * 2 + 1
    assert all(lines[f"{m} vs {x}"] == 1 for m in ("loss", "test_log_loss", "perplexity", "heldout_log_likelihood")
               for x in ("time", "updates"))
    assert lines["throughput vs time"] == 1  # a log of one line has no interval to measure
    ylabels = {ax.get_label(): ax.get_ylabel() for ax in fig.axes}
    assert "base e, lower is better" in ylabels["perplexity vs time"]
    assert "nats/word, higher is better" in ylabels["heldout_log_likelihood vs updates"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["linear", "LDA"]


@pytest.mark.parametrize(("suffix", "magic"), [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_the_suffix_sets_the_format_and_x_and_metrics_choose_the_panels(logs, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    out = tmp_path / f"curve{suffix}"
    out.write_text("an older figure")
    fig = plot_runs(logs["two"], out, x="updates", metrics=["test_log_loss"])
    assert out.read_bytes().startswith(magic)
    assert lines_per_axes(fig) == {"test_log_loss vs updates": 1, "throughput vs time": 1}


def test_any_numeric_key_can_be_named(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "mpi.jsonl"
    path.write_text("".join(json.dumps({"time": t, "pass": t, "updates": 10 * t, "delay_mean": 0.1 * t,
                                        "delay_histogram": [t, 1], "exchange": "ring"}) + "\n" for t in (1, 2, 3)))
    fig = plot_runs([path], tmp_path / "delay.png", x="time", metrics=["delay_mean"])
    assert lines_per_axes(fig) == {"delay_mean vs time": 1, "throughput vs time": 1}
    with pytest.raises(ValueError, match="'exchange' is in none of the logs"):
        plot_runs([path], tmp_path / "x.png", metrics=["exchange"])  # not a number


def test_simulated_logs_are_drawn_against_simulated_seconds(logs, tmp_path):
    """Logs of virtual ranks (every line "clock": "simulated") say so on their time axes; a
    real and a simulated run overlaid say both."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "sim.jsonl"
    path.write_text("".join(json.dumps({"time": t, "updates": 10 * t, "test_log_loss": 1 / t, "clock": "simulated"})
                            + "\n" for t in (1, 2, 3)))

    def time_labels(fig):
        return {ax.get_xlabel() for ax in fig.axes if not ax.get_label().endswith("vs updates")}

    assert time_labels(plot_runs([path], tmp_path / "sim.png")) == {"simulated time (s)"}
    assert time_labels(plot_runs([logs["one"]], tmp_path / "real.png")) == {"wall-clock time (s)"}
    assert time_labels(plot_runs([logs["one"], path], tmp_path / "both.png")) == {"time (s): wall-clock and simulated"}
    with pytest.raises(ValueError, match="'clock' is in none of the logs"):
        plot_runs([path], tmp_path / "x.png", metrics=["clock"])


# (plot_runs' keywords, the same on the command line, what both say)
ERRORS = {
    "unknown metric": (dict(metrics=["accuracy"]), "--metric accuracy", "metric 'accuracy' is in none of the logs"),
    "too many labels": (dict(labels=["a", "b"]), "--label a --label b", "2 label(s) for 1 log(s)"),
    "bad suffix": (dict(output="c.jpg"), "-o {out}/c.jpg", "c.jpg: the suffix sets the format; use .png, .pdf"),
    "missing folder": (dict(output="nodir/c.png"), "-o {out}/nodir/c.png", "nodir does not exist"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_plot_runs_and_the_command_refuse_before_drawing(case, logs, tmp_path, capsys):
    """Without matplotlib too: these come first."""
    kwargs, options, expected = ERRORS[case]
    kwargs = dict(kwargs)
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(expected)):
        plot_runs([logs["one"]], tmp_path / kwargs.pop("output", "c.png"), **kwargs)
    options = options.format(out=tmp_path).split()
    err = usage_error(["plot", logs["one"], *(options if "-o" in options else [*options, "-o", tmp_path / "c.png"])],
                      capsys)
    assert ERROR.match(err) and err.count("\n") == 1 and expected in err, err
    assert not list(tmp_path.iterdir())


def test_plot_runs_x_names_time_or_updates(logs, tmp_path):
    with pytest.raises(ValueError, match="x must name 'time' and/or 'updates'"):
        plot_runs([logs["one"]], tmp_path / "c.png", x="epoch")


def test_without_matplotlib_the_error_says_what_to_install(logs, tmp_path, monkeypatch):
    hide_matplotlib(monkeypatch)
    with pytest.raises(ImportError, match=re.escape("pip install 'dpsgd[plot]'")):
        plot_runs([logs["one"]], tmp_path / "curve.png")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------- the command
def test_the_command_draws_the_logs(logs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curve.png"
    assert main(["plot", str(logs["one"]), str(logs["lda"]), "-o", str(out), "--x", "time",
                 "--metric", "loss", "--metric", "perplexity", "--label", "SGD", "--label", "LDA"]) == 0
    assert out.read_bytes().startswith(PNG)
    assert capsys.readouterr().out == f"saved: {out}\n"


def test_the_command_writes_next_to_the_first_log_by_default(logs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    log = tmp_path / "run.jsonl"
    log.write_bytes(logs["two"].read_bytes())
    assert main(["plot", str(log)]) == 0
    assert (tmp_path / "run.png").read_bytes().startswith(PNG)


PATH_ERRORS = {"missing log": ("{out}/absent.jsonl -o {out}/c.png", "LOG {out}/absent.jsonl: no such file"),
               "a folder as log": ("{out} -o {out}/c.png", "LOG {out}: is a directory"),
               "output is a folder": ("{one} -o {out}", "--output {out}: is a directory")}


@pytest.mark.parametrize("case", PATH_ERRORS)
def test_the_command_checks_the_paths_first(case, logs, tmp_path, capsys):
    line, expected = PATH_ERRORS[case]
    fill = dict(out=tmp_path, one=logs["one"])
    err = usage_error(["plot", *line.format(**fill).split()], capsys)
    assert ERROR.match(err) and err.count("\n") == 1 and expected.format(**fill) in err, err
    assert not list(tmp_path.iterdir())


def test_an_unknown_x_is_argparse_s_error(logs, tmp_path, capsys):
    err = usage_error(["plot", logs["one"], "--x", "epochs"], capsys)
    assert err.startswith("usage: dpsgd plot ") and "invalid choice: 'epochs'" in err


def test_without_matplotlib_the_command_says_what_to_install(logs, tmp_path, capsys, monkeypatch):
    hide_matplotlib(monkeypatch)
    err = usage_error(["plot", logs["one"], "-o", tmp_path / "c.png"], capsys)
    assert ERROR.match(err) and err.count("\n") == 1 and "pip install 'dpsgd[plot]'" in err, err
    assert not list(tmp_path.iterdir())


def test_a_shell_sees_exit_code_2_and_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dpsgd", "plot", str(tmp_path / "absent.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"dpsgd: error: LOG {tmp_path / 'absent.jsonl'}: no such file\n"


def test_under_mpiexec_rank_0_alone_draws(logs, tmp_path):
    pytest.importorskip("matplotlib")
    out = run_mpi("dpsgd", 2, "plot", logs["one"], "-o", tmp_path / "curve.png")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"saved: {tmp_path / 'curve.png'}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


def test_suboptimality_curves_on_a_log_scale(tmp_path):
    """The composite solvers' benchmark logs (bench/piag.py --log-dir): P / P* - 1 falls over
    orders of magnitude and is drawn on a log axis, the objective on a linear one."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "piag.jsonl"
    rows = [{"time": 0.1 * k, "updates": 100 * k, "objective": 1.0 + 10.0 ** -k, "suboptimality": 10.0 ** -k}
            for k in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fig = plot_runs([path], tmp_path / "sub.png", x="updates")
    scales = {ax.get_label(): ax.get_yscale() for ax in fig.axes}
    assert scales["suboptimality vs updates"] == "log" and scales["objective vs updates"] == "linear"
    line = next(ax for ax in fig.axes if ax.get_label() == "suboptimality vs updates").get_lines()[0]
    assert list(line.get_ydata()) == [r["suboptimality"] for r in rows]
