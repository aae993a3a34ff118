"""A linear classifier trained by several MPI ranks (asynchronous SGD through an RMA window).

    mpiexec -n 4 python examples/distributed_linear.py train.svm --test test.svm
    mpiexec -n 4 python examples/distributed_linear.py          # the bundled a9a

Each rank reads only its share of the training file (a byte range; the ranks agree on the
columns), rank 0 scores the model on the test file and saves it.
"""

import argparse

from mpi4py import MPI

from dpsgd import SGDClassifier, save_model
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a, load_svmlight, load_svmlight_shard


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", nargs="?", help="svmlight training file (default: the bundled a9a)")
    parser.add_argument("--test", help="svmlight test file")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="threads per rank")
    parser.add_argument("--save", default="linear-example.npz")
    args = parser.parse_args()

    abort_on_exception()  # an error on any rank ends every rank, with its message
    comm = MPI.COMM_WORLD
    X_test = y_test = None
    if args.train is None:
        X, y, X_test, y_test = load_a9a()
        X, y = X[comm.rank::comm.size], y[comm.rank::comm.size]
    else:
        X, y = load_svmlight_shard(args.train, comm)
        if args.test and comm.rank == 0:
            X_test, y_test = load_svmlight(args.test, n_features=X.shape[1])

    def report(info):  # every rank, after each of its rounds
        if comm.rank == 0 and info["end_of_pass"]:
            print(f"epoch {info['pass']}: training loss {info['loss']:.4f}, delay mean {info['delay_mean']:.2f}",
                  flush=True)

    clf = SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=args.epochs, tol=None, n_threads=args.threads,
                        comm=comm, random_state=0)
    clf.fit(X, y, callback=report)  # every rank ends with the same model
    if comm.rank == 0:
        if X_test is not None:
            print(f"test accuracy {clf.score(X_test, y_test):.4f}")
        save_model(clf, args.save)
        print(f"{comm.size} ranks x {clf.n_threads_} threads; saved {args.save}")


if __name__ == "__main__":
    main()
