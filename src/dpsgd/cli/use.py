"""Commands that use a saved model: ``predict`` (linear), ``transform`` and ``topics`` (LDA).

Their shapes follow what users of scikit-learn and gensim expect: ``predict`` writes one label
per row (``--scores`` the decision function, ``--proba`` the class probabilities, columns in the
order of the sorted classes), ``transform`` one row of topic proportions per document, and
``topics`` the top words of each topic, as ``show_topics`` gives them.
"""

import gzip
import sys

from dpsgd.cli.checks import UsageError, reading
from dpsgd.cli.common import format_rows

_LINEAR = ("SGDClassifier", "SGDRegressor", "LogisticRegression", "Lasso")


def _load(path, kinds, command):
    """The model in ``path``, which must be one of the estimator classes ``kinds``."""
    from dpsgd import load_model

    with reading("MODEL", path):
        try:
            model = load_model(path)
        except ValueError as exc:  # name the user's file whatever the reason
            if str(path) in str(exc):
                raise
            raise UsageError(f"MODEL {path}: not a dpsgd model ({exc})") from exc
    name = type(model).__name__
    if name not in kinds:
        other = "'dpsgd transform' and 'dpsgd topics'" if name == "LatentDirichletAllocation" else "'dpsgd predict'"
        raise UsageError(f"{path}: a {name} model; 'dpsgd {command}' needs a {' or '.join(kinds)} "
                         f"(use {other} for this one)")
    return model


def _write(text, output):
    if output is None:
        sys.stdout.write(text)
    else:
        with reading("--output", output), open(output, "w") as f:
            f.write(text)


def _note(args, message):
    if not args.quiet:
        print(f"{args.command}: {message}", file=sys.stderr)


def predict(args):
    """``dpsgd predict MODEL DATA``: labels, scores or probabilities, one line per row."""
    from dpsgd.data import load_svmlight

    from sklearn.base import is_classifier

    model = _load(args.model, _LINEAR, "predict")
    classifier = is_classifier(model)
    if not classifier and (args.scores or args.proba):
        raise UsageError(f"{args.model}: a regressor predicts values; --scores and --proba are for classifiers")
    if args.proba and not hasattr(model, "predict_proba"):  # scikit-learn's available_if
        raise UsageError(f"{args.model}: a model of loss {model.loss!r} has no probabilities "
                         "(log_loss and modified_huber have)")
    with reading("DATA", args.data):
        X, y = load_svmlight(args.data, n_features=model.n_features_in_)
    if args.proba:
        values = model.predict_proba(X)
    elif args.scores:
        values = model.decision_function(X).reshape(X.shape[0], -1)
    else:
        values = model.predict(X).reshape(-1, 1)
    _write(format_rows(values), args.output)
    if classifier:
        _note(args, f"{X.shape[0]} rows of {args.data}, accuracy {model.score(X, y):.4f} against its labels")
    else:
        _note(args, f"{X.shape[0]} rows of {args.data}, R^2 {model.score(X, y):.4f} against its targets")
    return 0


def transform(args):
    """``dpsgd transform MODEL DOCWORD``: each document's topic proportions, one line each."""
    from dpsgd.data import load_uci_bow, read_uci_bow_header

    model = _load(args.model, ("LatentDirichletAllocation",), "transform")
    with reading("DOCWORD", args.corpus):
        n_docs, n_words, _ = read_uci_bow_header(args.corpus)
        if n_words != model.n_features_in_:
            raise UsageError(f"{args.corpus}: {n_words} words, the model was trained on {model.n_features_in_}; "
                             "the corpus must use the model's vocabulary")
        X, _ = load_uci_bow(args.corpus)
    _write(format_rows(model.transform(X)), args.output)
    _note(args, f"{n_docs} documents of {args.corpus} x {model.n_components} topics")
    return 0


def _read_vocabulary(path, n_words):
    with reading("--vocab", path), (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        words = [w.strip() for w in f.read().decode("utf-8").splitlines()]
    if len(words) != n_words:
        raise UsageError(f"--vocab {path}: {len(words)} words, the model has {n_words}")
    return words


def topics(args):
    """``dpsgd topics MODEL``: the top words of each topic."""
    model = _load(args.model, ("LatentDirichletAllocation",), "topics")
    n_words = model.components_.shape[1]
    if args.vocab is not None:
        vocabulary = _read_vocabulary(args.vocab, n_words)
    else:
        vocabulary = getattr(model, "vocabulary_", None)
        if vocabulary is None:
            vocabulary = [f"w{i}" for i in range(n_words)]
    for k, words in enumerate(model.show_topics(list(vocabulary), n_words=min(args.top_words, n_words))):
        print(f"topic {k:3d}: {' '.join(words)}")
    return 0

