"""Natural compression on the wire (allreduce, gossip): unbiased across real ranks, a quarter of
the bytes, every rank the same parameters; the combinations not built are refused."""

import json
import re
import subprocess
import sys

import pytest
from conftest import run_mpi


def test_compressed_allreduce_is_unbiased_across_ranks():
    rounds = 300
    out = run_mpi("compressed.py", 3, rounds, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["same"] and found["bytes_sent"] == found["expected_sent"] and found["clock"] == rounds
    # a round's average of k >= 2 decoded values has a relative sd of at most sqrt(1/16); over
    # 300 rounds 0.0144 a value, its mean over 200 values 0.001: bounds of about 6 sd
    assert abs(found["mean_relative_error"]) < 0.006 and found["max_relative_error"] < 0.09, found
    skipped = len(range(3, rounds, 4)) if out.ranks > 1 else 0
    assert found["updates"] == rounds * out.ranks - skipped


@pytest.mark.parametrize("exchange", ["server", "async_gossip"])
def test_compression_needs_allreduce_or_gossip(exchange):
    from dpsgd import SGDClassifier

    with pytest.raises(ValueError, match="travels with exchange='allreduce' or 'gossip' only"):
        SGDClassifier(exchange=exchange, compression="natural", comm=object()).fit([[0.0], [1.0]], [0, 1])


def test_unknown_compression():
    from dpsgd import LatentDirichletAllocation

    with pytest.raises(ValueError, match="compression must be None or one of"):
        LatentDirichletAllocation(2, exchange="allreduce", compression="zip").fit([[1, 2], [3, 4]])


def test_cli_compression(tmp_path):
    out = run_mpi("dpsgd", 2, "train", "linear", "--epochs", 2, "--threads", 1, "--exchange", "allreduce",
                  "--compression", "natural", "--quiet", timeout=300)
    assert out.returncode == 0, out.stderr
    out = run_mpi("dpsgd", 2, "train", "linear", "--compression", "natural", "--quiet", timeout=120)
    assert out.returncode == 2 and "--compression natural travels with --exchange allreduce or gossip only" in out.stderr


def test_compressed_gossip_reaches_one_process_quality_through_the_cli():
    """Gossip sending codes of how far each rank is from its neighbours' copy (CHOCO-gossip):
    a9a's test log-loss within 2% of one process's, with a quarter of the bytes (2 ranks: at 4
    on 2 cores, 5 epochs of gossip itself end 3% above one process, compressed or not)."""
    def loss_and_bytes(*args):
        out = run_mpi("dpsgd", 2, "train", "linear", "--epochs", 5, "--threads", 1, *args, timeout=300, exact=True)
        assert out.returncode == 0, out.stderr
        return (float(re.search(r"test log-loss ([\d.]+)", out.stdout).group(1)),
                float(re.search(r"([\d.]+) MB sent", out.stdout).group(1)))

    single = subprocess.run([sys.executable, "-m", "dpsgd", "train", "linear", "--epochs", "5", "--threads", "1"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    one = float(re.search(r"test log-loss ([\d.]+)", single.stdout).group(1))
    plain, plain_mb = loss_and_bytes("--exchange", "gossip")
    coded, coded_mb = loss_and_bytes("--exchange", "gossip", "--compression", "natural")
    assert coded < one * 1.02, (coded, plain, one)
    assert coded_mb == pytest.approx(plain_mb / 4, rel=0.01)
