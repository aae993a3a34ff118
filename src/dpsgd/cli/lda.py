"""``dpsgd train lda``: an LDA topic model by parallel SVI, in one process or under mpiexec."""

import time

from dpsgd.cli.checks import UsageError, check_lda_memory, reading
from dpsgd.cli.common import read_checkpoint, remaining, rounds_summary, save_then_report
from dpsgd.cli.driver import TrainingRun


def _corpus(args, topology):
    """This rank's training documents, the held-out documents (rank 0 only), the vocabulary
    (rank 0; None without --vocab), the true topics of a generated corpus, and a description.

    Every rank takes a contiguous range of documents (reading only that range of a docword
    file); one document in ten, the same ones whatever the number of ranks, is held out."""
    import scipy.sparse as sp

    from dpsgd.data import contiguous_share, heldout_mask, load_uci_bow, make_lda_corpus, read_uci_bow_header

    true_topics = vocabulary = None
    if args.corpus is None:
        n_docs, n_words = args.docs, args.words
        check_lda_memory(args.topics, n_words, n_docs)
        X_all, true_topics, _ = make_lda_corpus(n_docs, n_words, args.topics, 100, random_state=args.seed)
        source = (f"generated from LDA's model: {n_docs} documents, {n_words} words, "
                  f"{args.topics} true topics")
    else:
        with reading("--corpus", args.corpus):
            n_docs, n_words, _ = read_uci_bow_header(args.corpus)
        check_lda_memory(args.topics, n_words)
        source = args.corpus
    if n_docs < 2:
        raise UsageError(f"{source}: {n_docs} document; one in ten (at least one) is held out, "
                         "so training needs at least 2")
    first, last = contiguous_share(n_docs, topology.rank, topology.ranks)
    if args.corpus is None:
        X = X_all[first:last]
    else:
        with reading("--corpus", args.corpus):
            X, vocabulary = load_uci_bow(args.corpus, args.vocab if topology.is_root else None, docs=(first, last))
    is_test = heldout_mask(n_docs, args.seed, first, last)
    X_train, X_test = X[~is_test], X[is_test]
    tokens = topology.total(float(X.sum()))
    parts = topology.to_root(X_test)  # every rank's held-out documents, on rank 0
    X_test = sp.vstack(parts).tocsr() if topology.is_root else None
    description = f"{source}: {n_docs} documents x {n_words} words, {int(tokens)} tokens"
    return X_train, X_test, vocabulary, true_topics, description


def _resume(args, lda, n_words):
    """Set ``lda`` to continue from the checkpoint; the passes it has done."""
    arrays, meta = read_checkpoint(args.resume, "lda", ("components_",), ("n_batch_iter", "passes_done"))
    if arrays["components_"].shape != (args.topics, n_words):
        raise UsageError(f"--resume {args.resume}: the checkpoint's topics are {arrays['components_'].shape}, "
                         f"this run has ({args.topics}, {n_words}) (--topics x the corpus's words)")
    # continue the same step-size schedule from the saved topics (warm_start)
    lda.components_, lda.n_batch_iter_ = arrays["components_"], int(meta["n_batch_iter"])
    lda.n_features_in_, lda.warm_start = n_words, True
    return int(meta["passes_done"])


def train_lda(args, comm=None):
    """Run ``dpsgd train lda``; returns the exit code."""
    from dpsgd import LatentDirichletAllocation, persist
    from dpsgd.comm import Topology
    from dpsgd.evaluation import heldout_log_likelihood, match_topics, perplexity

    topology = Topology(comm)
    distributed = topology.distributed
    X_train, X_test, vocabulary, true_topics, description = _corpus(args, topology)
    if topology.is_root:
        print(f"corpus: {description}" + (f", {topology.ranks} ranks" if distributed else ""))
    lda = LatentDirichletAllocation(n_components=args.topics, batch_size=args.batch_size, n_threads=args.threads,
                                    parallel=args.parallel, reseed_topics=args.reseed_topics, comm=comm,
                                    exchange=args.exchange, max_seconds=args.max_seconds,
                                    max_updates=args.max_updates, network=args.network,
                                    compression=args.compression, gossip_graph=args.graph)
    done = 0
    if args.resume:
        done = _resume(args, lda, X_train.shape[1])
        if topology.is_root:
            print(f"resuming from {args.resume}: {done} passes done")
    passes = remaining(args.passes, done, "--passes", args.resume) if args.resume else args.passes
    lda.set_params(max_iter=passes, random_state=args.seed + done)
    docs = topology.total(X_train.shape[0])

    def evaluate(model):
        topics, kw = model["components_"], dict(n_threads=lda.n_threads_)
        return {"perplexity": perplexity(topics, X_test, lda.doc_topic_prior_, lda.topic_word_prior_, **kw),
                "heldout_log_likelihood": heldout_log_likelihood(topics, X_test, lda.doc_topic_prior_, **kw)}

    def checkpoint(model, passes_done, t):
        persist.write_checkpoint(args.checkpoint, "lda", model,
                                 {"passes_done": passes_done, "n_batch_iter": int(t),
                                  "n_topics": args.topics, "n_words": int(X_train.shape[1])})

    # documents in both modes; under MPI rank 0 counts every rank's documents at each of its
    # pass ends: those of the run's passes so far where the ranks share the steps (its own
    # passes may be fewer or more than the run's), else one pass's
    counted = 0

    def documents(info):
        nonlocal counted
        if not distributed or not info["end_of_pass"]:
            return 0 if distributed else info["samples"]
        now = min(passes * docs, round(info["run_passes"] * docs) if "run_passes" in info else counted + docs)
        added, counted = max(now - counted, 0), max(now, counted)
        return added

    tic = time.perf_counter()
    run = TrainingRun(args, topology, progress=(passes * docs, "documents", documents), pass_key="pass",
                      passes_done=done, updates_done=lda.n_batch_iter_ - 1 if args.resume else 0,
                      checkpoint=checkpoint, evaluate=evaluate)
    with run:
        lda.fit(X_train, callback=run)
        if distributed:  # the documents after rank 0's last pass end
            run.progress.update(max(min(lda.n_iter_, passes) * docs - counted, 0))
    wall = time.perf_counter() - tic
    if not topology.is_root:
        return 0
    if args.checkpoint:  # the end state: rank 0's last pass may have ended before others' last steps
        checkpoint({"components_": lda.components_}, done + lda.n_iter_, lda.n_batch_iter_)
    if vocabulary is not None:
        lda.vocabulary_ = list(vocabulary)  # saved with the model: `dpsgd topics` needs no vocab file
    for k, words in enumerate(lda.show_topics(vocabulary or [f"w{i}" for i in range(X_train.shape[1])],
                                              n_words=args.top_words)):
        print(f"topic {k:3d}: {' '.join(words)}")

    def parts():
        result = [f"passes {done + lda.n_iter_}", f"global steps {lda.n_batch_iter_ - 1}",
                  f"threads {lda.n_threads_} ({args.parallel})"
                  + (f" x {topology.ranks} ranks ({args.exchange})" if distributed else ""),
                  f"train time {wall:.2f} s", f"{lda.n_iter_ * docs / wall:.0f} documents/s",
                  f"held-out perplexity {lda.perplexity(X_test):.1f} (base e, variational bound)",
                  f"held-out log-likelihood {lda.heldout_log_likelihood(X_test):.4f} nats/word (document completion)"]
        if distributed:
            result.append(rounds_summary(lda.round_stats_))
        if true_topics is not None:
            result.append(f"topic recovery {match_topics(true_topics, lda.components_)[0]:.4f} (mean matched cosine)")
        return result

    return save_then_report(lda, args.save, parts)
