"""A topic model trained by several MPI ranks (DPSVI), each reading only its own documents.

    mpiexec -n 4 python examples/distributed_lda.py docword.ap.txt --vocab vocab.ap.txt --topics 20
    mpiexec -n 4 python examples/distributed_lda.py            # a generated corpus, no download

Rank 0 prints a line after each of its passes (the other ranks go on), the topics, and saves
the model with its vocabulary (``dpsgd topics lda-example.npz`` shows them again).
"""

import argparse

from mpi4py import MPI

from dpsgd import LatentDirichletAllocation, save_model
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_uci_bow, make_lda_corpus, read_uci_bow_header


def my_documents(comm, corpus, vocab):
    """This rank's contiguous range of documents, and the vocabulary (rank 0 reads it)."""
    if corpus is None:  # every rank draws the same corpus and keeps its share
        X, _, _ = make_lda_corpus(4000, 500, 10, 100, random_state=0)
        n_docs, vocabulary = X.shape[0], None
    else:
        n_docs, _, _ = read_uci_bow_header(corpus)
    start, stop = n_docs * comm.rank // comm.size, n_docs * (comm.rank + 1) // comm.size
    if corpus is None:
        return X[start:stop], vocabulary
    return load_uci_bow(corpus, vocab if comm.rank == 0 else None, docs=(start, stop))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", help="UCI docword file (default: a generated corpus)")
    parser.add_argument("--vocab", help="UCI vocab file")
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="threads per rank")
    parser.add_argument("--save", default="lda-example.npz")
    args = parser.parse_args()

    abort_on_exception()  # an error on any rank ends every rank, with its message
    comm = MPI.COMM_WORLD
    X, vocabulary = my_documents(comm, args.corpus, args.vocab)

    def report(info):  # every rank, after each of its rounds; rank 0 prints at its pass ends
        if comm.rank == 0 and info["end_of_pass"]:
            print(f"pass {info['pass']}: {info['updates']} global steps, delay mean {info['delay_mean']:.1f}",
                  flush=True)

    lda = LatentDirichletAllocation(args.topics, max_iter=args.passes, n_threads=args.threads, comm=comm,
                                    random_state=0)
    lda.fit(X, callback=report)  # every rank ends with the same topics
    if comm.rank == 0:
        words = vocabulary or [f"w{i}" for i in range(X.shape[1])]
        for k, top in enumerate(lda.show_topics(words, n_words=8)):
            print(f"topic {k:2d}: {' '.join(top)}")
        if vocabulary is not None:
            lda.vocabulary_ = vocabulary
        save_model(lda, args.save)  # without the communicator: load_model gives a local model
        print(f"{comm.size} ranks x {lda.n_threads_} threads; saved {args.save}")


if __name__ == "__main__":
    main()
