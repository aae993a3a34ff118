"""Checks that run before any work: the user's paths, options that need another, memory.

A run must fail in its first second, naming the user's own path, rather than after an hour of
training with a message about an internal temporary file.
"""

import contextlib
import os
import sys
import zipfile
import zlib

from dpsgd.cli.parser import given
from dpsgd.comm.exchange import COMPRESSED, UNSCALED


class UsageError(ValueError):
    """A mistake in the command line or its files: ``dpsgd: error: ...``, exit code 2."""


# what reading a damaged or unreadable input can raise besides ValueError: gzip.BadGzipFile and
# the .bz2 module's "Invalid data stream" are OSErrors, a truncated archive ends in EOFError,
# a .npz that is no zip in BadZipFile, an index past 2**31 or a count past 2**63 in OverflowError
_READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, OverflowError, UnicodeDecodeError)


@contextlib.contextmanager
def reading(option, path):
    """Turn the low-level errors of reading ``path`` into a :class:`UsageError` naming it."""
    try:
        yield
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except _READ_ERRORS as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(f"{option} {path}: cannot be read: {reason}") from exc


def check_input(option, path):
    """``path`` names a readable regular file (or raises :class:`UsageError`)."""
    if path is None:
        return
    if not os.path.exists(path):
        raise UsageError(f"{option} {path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{option} {path}: not readable (permission denied)")


def check_output(option, path):
    """``path`` can be written: its folder exists and is writable, and it is not a directory."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is not writable")


def _needs(args, option, other, reason):
    if given(args, option) and getattr(args, other) is None:
        raise UsageError(f"--{option.replace('_', '-')} needs --{other.replace('_', '-')}: {reason}")


def check_train_args(args, root=True, distributed=False):
    """Refuse options that would be ignored, and unusable paths, before any work.

    Output paths are checked where they are written: on rank 0 (``root``)."""
    _needs(args, "checkpoint_every", "checkpoint", "it sets how often the checkpoint is written")
    if args.compression is not None and args.exchange not in COMPRESSED:
        raise UsageError(f"--compression {args.compression} travels with --exchange allreduce or gossip only")
    if args.graph != "exponential" and args.exchange not in ("gossip", "async_gossip"):
        raise UsageError(f"--graph {args.graph} is the graph of --exchange gossip or async_gossip")
    if given(args, "network") and not distributed:  # a job script may be run both ways: a note
        print("dpsgd: note: one process ignores --network (it models the links between ranks under mpiexec)",
              file=sys.stderr)
    for option in ("save", "checkpoint", "log_json"):
        if root:
            check_output("--" + option.replace("_", "-"), getattr(args, option))
    if args.save is not None and args.checkpoint is not None and _same(args.save, args.checkpoint):
        raise UsageError(f"--save and --checkpoint name the same file {args.save}; the model would "
                         "overwrite the checkpoint")
    check_input("--resume", args.resume)
    if args.task == "a2c":
        if given(args, "max_updates"):
            raise UsageError("a2c counts its budget in env steps: use --timesteps")
        if given(args, "step_policy") and args.step_policy != "none" and args.exchange in UNSCALED:
            raise UsageError(f"--step-policy scales the server's pushes by their delays; --exchange {args.exchange} "
                             "does not scale its changes")
        return
    if args.task == "lda":
        _needs(args, "vocab", "corpus", "the generated corpus has no vocabulary file")
        for option in ("docs", "words"):
            if given(args, option) and args.corpus is not None:
                raise UsageError(f"--{option} sets the generated corpus; it cannot be used with --corpus")
        check_input("--corpus", args.corpus)
        check_input("--vocab", args.vocab)
    else:
        _needs(args, "test", "data", "the bundled a9a is tested on its own test file")
        _needs(args, "n_features", "data", "the bundled a9a has 123 features")
        if given(args, "tau_max") and args.step_policy != "fixed_for_delay":
            raise UsageError("--tau-max is used only by --step-policy fixed_for_delay")
        if given(args, "policy_alpha") and args.step_policy not in ("budget", "fixed_or_skip"):
            raise UsageError("--policy-alpha is used only by --step-policy budget and fixed_or_skip")
        if given(args, "policy_delay") and args.step_policy == "none":
            raise UsageError("--policy-delay is the delay a --step-policy sees; --step-policy none scales nothing")
        if given(args, "eta0") and args.learning_rate == "optimal":
            raise UsageError("--eta0 is not used by --learning-rate optimal (as in scikit-learn); "
                             "choose constant or invscaling")
        check_input("--data", args.data)
        check_input("--test", args.test)


def _same(a, b):
    return os.path.abspath(a) == os.path.abspath(b)


def available_memory():
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# LDA holds about this many K x V float64 matrices at once: lambda, exp(E[log beta]), the
# kernel's word-major copy and the evaluation's normalised topics
_LDA_MATRICES = 4


def check_lda_memory(n_topics, n_words, n_generated_docs=0):
    """Refuse a topic model (and a generated corpus of ``n_generated_docs`` documents of about
    100 words: its document-topic matrix and counts) that does not fit in the available memory."""
    need = 8 * (_LDA_MATRICES * n_topics * n_words + n_generated_docs * (n_topics + 2 * min(100, n_words)))
    free = available_memory()
    if free is not None and need > free:
        raise UsageError(f"--topics {n_topics} with {n_words} words"
                         + (f" and {n_generated_docs} generated documents" if n_generated_docs else "")
                         + f" needs about {need / 2**30:.1f} GiB; {free / 2**30:.1f} GiB are available")
