"""The ``dpsgd`` command's arguments: every option validated as it is parsed, with help and default.

Numbers are checked by their ``type`` functions, so ``--checkpoint-every 0`` or ``--epochs -1``
end with ``dpsgd train linear: error: argument --epochs: ...`` before anything runs. Options
that apply only with another one (``--vocab`` with ``--corpus``) are refused in
:mod:`dpsgd.cli.checks` when given alone: :class:`_Store` records which options the user gave.
"""

import argparse
import math

from dpsgd.comm.exchange import EXCHANGES
from dpsgd.comm.exchange import GRAPHS


def _number(kind, text, ok, what):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} expected, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{what} expected, got {text!r}")
    return value


def positive_int(text):
    """An int >= 1 (argparse type)."""
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def round_length(text):
    """'auto' or an int >= 1 (argparse type of --sync-every)."""
    return text if text == "auto" else positive_int(text)


def non_negative_int(text):
    """An int >= 0 (argparse type)."""
    return _number(int, text, lambda v: v >= 0, "a non-negative integer")


def thread_count(text):
    """A non-zero int: positive counts, negative ones count back from the cores (argparse type)."""
    return _number(int, text, lambda v: v != 0, "a non-zero integer (-1: all cores, -2: all but one)")


def positive_float(text):
    """A finite float > 0 (argparse type)."""
    return _number(float, text, lambda v: math.isfinite(v) and v > 0, "a positive number")


def network_model(text):
    """A network model: a preset ("10GbE", "1GbE") or "field=value,..." (argparse type)."""
    from dpsgd.comm.network import make_network

    try:
        make_network(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def rate_or_schedule(text):
    """A positive step size, or RL-Zoo's linear schedule "lin_<positive number>" (argparse type)."""
    if text.startswith("lin_"):
        positive_float(text.removeprefix("lin_"))
        return text
    return positive_float(text)


def non_negative_float(text):
    """A finite float >= 0 (argparse type)."""
    return _number(float, text, lambda v: math.isfinite(v) and v >= 0, "a non-negative number")


def unit_interval(text):
    """A float in (0, 1] (argparse type)."""
    return _number(float, text, lambda v: 0 < v <= 1, "a number in (0, 1]")


class _Store(argparse._StoreAction):
    """``store`` that also records the option as given, so that an option used without the
    one it needs is refused rather than ignored."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


class _StoreTrue(argparse._StoreTrueAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


class _Parser(argparse.ArgumentParser):
    """A parser whose unknown options are its own error, with its own usage line.

    argparse hands a subcommand's unknown options up to the top-level parser, which then
    prints ``usage: dpsgd [-h] {info,train} ...`` for a typo in ``dpsgd train linear``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        # no abbreviations: `--epoch 3` is a typo to report, not a silent `--epochs 3`, and a
        # new option would change what an abbreviation in someone's job script means
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Store)  # add_argument without an action
        self.register("action", "store", _Store)
        self.register("action", "store_true", _StoreTrue)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != "dpsgd":
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def given(args, dest):
    """Whether the user gave option ``dest`` on the command line."""
    return dest in getattr(args, "given", ())


def build_parser():
    """The ``dpsgd`` argument parser (info, train lda / linear / prox / a2c, predict, transform,
    topics, plot).

    Returns
    -------
    argparse.ArgumentParser
        The parser; its errors exit with code 2 and name the option.

    Examples
    --------
    >>> from dpsgd.cli import build_parser
    >>> args = build_parser().parse_args(["train", "linear", "--epochs", "5"])
    >>> args.command, args.task, args.epochs
    ('train', 'linear', 5)
    """
    from dpsgd import __version__

    parser = _Parser(prog="dpsgd", description="Lock-free parallel and distributed SGD: train topic models "
                     "and linear classifiers, on one machine or under mpiexec, and use the saved models.")
    parser.add_argument("--version", action="version", version=f"dpsgd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("info", help="version, OpenMP threads, MPI and the number of ranks",
                   description="Version, OpenMP threads, MPI and the number of ranks (once, from rank 0).")
    train = sub.add_parser("train", help="train a model", description="Train a model.")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_Parser)
    _add_lda(tasks.add_parser("lda", help="LDA topic model by parallel stochastic variational inference",
                              description="LDA topic model by parallel stochastic variational inference. "
                              "Without --corpus: a corpus drawn from LDA's generative model."))
    _add_linear(tasks.add_parser("linear", help="linear classifier on a LIBSVM / svmlight file",
                                 description="Linear classifier by Hogwild! SGD on a svmlight file. "
                                 "Without --data: the bundled a9a data set and its test file."))
    from dpsgd.cli.prox import add_arguments as _add_prox

    _add_prox(tasks.add_parser("prox", help="L1 logistic regression by async_bcd or piag on a svmlight file",
                               description="L1 (L2, elastic-net) logistic regression by delay-adaptive "
                               "Async-BCD (threads) or PIAG (ranks, under mpiexec). Without --data: a9a."))
    _add_a2c(tasks.add_parser("a2c", help="advantage actor-critic (HSA2C) on a C environment",
                              description="A2C with Hogwild! threads (and ranks under mpiexec) on a C "
                              "environment, with Stable-Baselines3's names and RL-Zoo's CartPole-v1 defaults. "
                              "Stops when the mean return of the last 100 episodes reaches --stop-at-reward."))
    _add_use_commands(sub)
    _add_plot(sub)
    return parser


def _add_common(p, unit, updates):
    """Options of both training commands: threads, seed, output, budgets, log, checkpoints."""
    p.add_argument("--threads", type=thread_count, default=None,
                   help="OpenMP threads per process (None: every core the process may use; "
                   "-1 all, -2 all but one)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--save", metavar="FILE", help="write the model here (.npz with JSON metadata, no pickle)")
    p.add_argument("--quiet", action="store_true", help="no progress report")
    p.add_argument("--exchange", choices=list(EXCHANGES), default="server",
                   help="how ranks share the parameters under mpiexec: server (asynchronous, DPSGD's "
                   "one-sided parameter server), allreduce (synchronous averaging every round), gossip "
                   "(D-PSGD: every round each rank averages with its neighbours in a graph, --graph) or "
                   "async_gossip (AD-PSGD: each rank averages with one neighbour at a time, nobody waits)")
    p.add_argument("--network", type=network_model, metavar="MODEL",
                   help="under mpiexec, run as over a cluster's network: 10GbE, 1GbE, or fields such as "
                   "latency=1e-4,bandwidth=1.25e8,slow_rank=1,slow_factor=3 (seconds, bytes/s; the seconds "
                   "added are in the log)")
    p.add_argument("--graph", choices=list(GRAPHS), default="exponential",
                   help="the gossip exchanges' graph of ranks: exponential (rank i sends to i + 1, i + 2, "
                   "i + 4, ...) or ring (i - 1 and i + 1)")
    p.add_argument("--compression", choices=["natural"],
                   help="what each rank's change travels as under mpiexec: natural compression's 2-byte "
                   "codes (unbiased rounding to a power of two; with --exchange allreduce or gossip)")
    p.add_argument("--max-seconds", type=positive_float, metavar="S",
                   help="stop after this many seconds (all ranks together)")
    p.add_argument("--max-updates", type=positive_int, metavar="N",
                   help=f"stop after this many {updates}, over all ranks")
    p.add_argument("--log-json", metavar="FILE", help=f"write one JSON line per {unit}: time, updates, "
                   "held-out quality (rank 0, from the global model), delays, communication seconds")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (.npz + JSON, written atomically)")
    p.add_argument("--checkpoint-every", type=positive_int, default=1, metavar="N",
                   help=f"{unit}s between checkpoints (needs --checkpoint)")
    p.add_argument("--resume", metavar="FILE", help="continue from this checkpoint")


def _add_lda(p):
    p.add_argument("--corpus", metavar="DOCWORD",
                   help="UCI bag-of-words docword file (.gz ok); None: a generated corpus")
    p.add_argument("--vocab", metavar="FILE", help="UCI vocab file, one word per line (needs --corpus); "
                   "saved into the model")
    p.add_argument("--topics", type=positive_int, default=10, metavar="K", help="number of topics")
    p.add_argument("--passes", type=positive_int, default=10, metavar="P", help="passes over the corpus")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="B", help="documents per minibatch")
    p.add_argument("--parallel", choices=["batch", "hogwild"], default="batch",
                   help="threads share each minibatch (batch) or take whole minibatches (hogwild)")
    p.add_argument("--reseed-topics", action="store_true",
                   help="re-seed dead or duplicate topics during the first half of the passes")
    p.add_argument("--docs", type=positive_int, default=5000, metavar="D",
                   help="documents of the generated corpus (not with --corpus)")
    p.add_argument("--words", type=positive_int, default=500, metavar="V",
                   help="vocabulary of the generated corpus (not with --corpus)")
    p.add_argument("--top-words", type=positive_int, default=10, metavar="N", help="words shown per topic")
    _add_common(p, "pass", "minibatch steps")


def _add_linear(p):
    p.add_argument("--data", metavar="FILE", help="training file (svmlight; .gz/.bz2 ok); None: bundled a9a")
    p.add_argument("--test", metavar="FILE", help="test file (svmlight; needs --data: a9a brings its own)")
    p.add_argument("--n-features", type=positive_int, metavar="N",
                   help="number of features (needs --data; None: the largest index, or the checkpoint's)")
    p.add_argument("--loss", default="log_loss",
                   choices=["log_loss", "hinge", "modified_huber", "squared_hinge", "perceptron"], help="loss")
    p.add_argument("--penalty", default="l2", choices=["l2", "l1", "elasticnet"], help="regularisation")
    p.add_argument("--alpha", type=non_negative_float, default=1e-4, help="regularisation strength")
    p.add_argument("--learning-rate", default="optimal", choices=["optimal", "constant", "invscaling"],
                   help="step-size schedule (scikit-learn's)")
    p.add_argument("--eta0", type=positive_float, default=0.01,
                   help="initial step of the constant and invscaling schedules")
    p.add_argument("--epochs", type=positive_int, default=20, help="passes over the training data")
    p.add_argument("--sync-every", type=round_length, default="auto", metavar="N",
                   help="samples between exchanges (under mpiexec); auto: 32 exchanges per pass over a "
                        "rank's rows, at most 4096 samples each")
    p.add_argument("--step-policy", default="budget", choices=["none", "budget", "fixed_or_skip", "fixed_for_delay"],
                   help="scale pushed changes by the measured delay (under mpiexec; 'none' pushes them unscaled)")
    p.add_argument("--policy-alpha", type=unit_interval, default=0.9, help="alpha of budget and fixed_or_skip")
    p.add_argument("--tau-max", type=non_negative_int, default=16, help="tau_max of fixed_for_delay")
    p.add_argument("--policy-delay", choices=["push", "oldest_read"], default="push",
                   help="the delay the step policy sees: each push's own, or the age of the oldest read any "
                   "rank still computes from (keeps every window of steps within gamma'; slower, see docs/distributed.md)")
    _add_common(p, "epoch", "SGD steps (samples)")


def reward(text):
    """A finite float, or 'none' (argparse type of --stop-at-reward; kept as the string, since
    None is the option's default: the environment's threshold)."""
    return text if text == "none" else _number(float, text, math.isfinite, "a number or 'none'")


def _add_a2c(p):
    from dpsgd.envs import names

    p.add_argument("--env", default="CartPole-v1", choices=names(), help="environment (Gymnasium's name)")
    p.add_argument("--timesteps", type=positive_int, default=500_000, metavar="N",
                   help="env steps to train for, over all threads and ranks")
    p.add_argument("--stop-at-reward", type=reward, metavar="R",
                   help="stop when the mean return of a rank's last 100 episodes reaches R (None: the "
                   "environment's Gymnasium threshold, 475 for CartPole-v1, -100 for Acrobot-v1; "
                   "'none': train the whole budget)")
    p.add_argument("--n-envs", type=positive_int, default=8, metavar="N", help="environments per thread")
    p.add_argument("--n-steps", type=positive_int, default=5, metavar="N", help="steps per env per update")
    p.add_argument("--learning-rate", type=rate_or_schedule, default=7e-4,
                   help="the optimizer's step, or lin_<step> for RL-Zoo's linear decay to 0")
    p.add_argument("--gamma", type=unit_interval, default=0.99, help="discount factor")
    p.add_argument("--gae-lambda", type=unit_interval, default=1.0, help="GAE's lambda (1: n-step returns)")
    p.add_argument("--ent-coef", type=non_negative_float, default=0.0, help="weight of the entropy loss")
    p.add_argument("--vf-coef", type=non_negative_float, default=0.5, help="weight of the value loss")
    p.add_argument("--max-grad-norm", type=positive_float, default=0.5, help="global-norm gradient clipping")
    p.add_argument("--normalize-advantage", action="store_true", help="standardise each rollout's advantages")
    p.add_argument("--normalize", action="store_true",
                   help="normalise observations and rewards by running statistics (SB3's VecNormalize, as "
                   "RL-Zoo runs Acrobot-v1)")
    p.add_argument("--optimizer", choices=["rmsprop", "adam"], default="rmsprop",
                   help="RMSprop (SB3's A2C default) or Adam (SB3's use_rms_prop=False)")
    p.add_argument("--optimizer-stats", choices=["shared", "per-thread"], default="shared",
                   help="the threads share the optimizer's statistics (A3C's shared RMSProp) or keep their own")
    p.add_argument("--step-policy", default="none", choices=["none", "budget", "fixed_or_skip"],
                   help="scale pushed changes by the measured delay (under mpiexec; 'none' adds them "
                   "as A3C's workers do)")
    p.add_argument("--log-interval", type=positive_int, default=10_000, metavar="N",
                   help="env steps (of rank 0) between log lines and checkpoints")
    _add_common(p, "log interval", "env steps")


def _add_use_commands(sub):
    """predict, transform, topics: what a saved model is for."""
    p = sub.add_parser("predict", help="labels (or scores, probabilities) of a svmlight file by a linear model",
                       description="Predict with a linear model saved by 'train linear --save': one line per "
                       "row of DATA (a label, or the scores / probabilities of the classes in sorted order, "
                       "space-separated). The accuracy on DATA's labels goes to stderr.")
    p.add_argument("model", metavar="MODEL", help="model file written by --save")
    p.add_argument("data", metavar="DATA", help="svmlight file (.gz/.bz2 ok)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--scores", action="store_true", help="decision function values instead of labels")
    what.add_argument("--proba", action="store_true", help="class probabilities instead of labels "
                      "(log_loss and modified_huber models)")
    _add_output(p)
    p = sub.add_parser("transform", help="document-topic distributions of a docword file by an LDA model",
                       description="One line per document of DOCWORD: its topic proportions under an LDA "
                       "model saved by 'train lda --save', space-separated.")
    p.add_argument("model", metavar="MODEL", help="model file written by --save")
    p.add_argument("corpus", metavar="DOCWORD", help="UCI docword file (.gz ok) with the model's vocabulary")
    _add_output(p)
    p = sub.add_parser("topics", help="top words of each topic of an LDA model",
                       description="The top words of each topic of an LDA model saved by 'train lda --save'. "
                       "The words come from --vocab, else from the model (saved with 'train lda --vocab'), "
                       "else they are word ids (w0, w1, ...).")
    p.add_argument("model", metavar="MODEL", help="model file written by --save")
    p.add_argument("--vocab", metavar="FILE", help="UCI vocab file (None: the model's own vocabulary)")
    p.add_argument("--top-words", type=positive_int, default=10, metavar="N", help="words shown per topic")


def _add_plot(sub):
    """plot: the learning curves of --log-json logs."""
    p = sub.add_parser("plot", help="learning curves of --log-json logs, into a .png, .pdf or .svg file "
                       "(needs matplotlib: pip install 'dpsgd[plot]')",
                       description="Draw the learning curves of one or several logs written by 'train ... "
                       "--log-json', overlaid: each quality metric against wall-clock seconds and against "
                       "updates, and the updates per second between log lines.")
    p.add_argument("logs", nargs="+", metavar="LOG", help="JSON-lines log written by --log-json")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the figure; .png, .pdf or .svg (None: the first LOG's name with .png)")
    p.add_argument("--x", choices=["time", "updates", "both"], default="both",
                   help="draw each metric against wall-clock seconds, updates, or both")
    p.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                   help="a key of the logs to draw, e.g. perplexity or delay_mean; repeat for more "
                   "(None: every quality metric in the logs)")
    p.add_argument("--label", dest="labels", action="append", metavar="TEXT",
                   help="legend entry of each LOG, in their order; repeat once per LOG (None: the file names)")


def _add_output(p):
    p.add_argument("--output", metavar="FILE", help="write here (None: standard output)")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
