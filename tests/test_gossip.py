"""The gossip exchange (D-PSGD, dpsgd.comm.gossip): its graphs, its averaging across real
ranks, and the estimators over it."""

import json

import numpy as np
import pytest
from conftest import run_mpi

from dpsgd.comm.gossip import GRAPHS, neighbours


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 5, 8, 16, 64])
def test_graphs_are_regular_and_consistent(graph, ranks):
    """Every rank has as many in- as out-neighbours, never itself, the same number as every
    other rank (so uniform weights make W doubly stochastic), and j sends to i exactly when i
    receives from j."""
    sides = [neighbours(graph, r, ranks) for r in range(ranks)]
    degrees = {len(s) for ins, outs in sides for s in (ins, outs)}
    assert len(degrees) == 1
    for r, (ins, outs) in enumerate(sides):
        assert r not in ins and r not in outs and len(set(ins)) == len(ins)
        assert all(r in sides[j][1] for j in ins) and all(r in sides[j][0] for j in outs)
    W = np.eye(ranks)
    for r, (ins, _) in enumerate(sides):
        W[r, ins] = 1.0
    W /= W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(W.sum(axis=0), 1.0)  # doubly stochastic: the average is kept
    if ranks > 1:  # connected: the averaging reaches consensus
        assert np.sort(np.abs(np.linalg.eigvals(W)))[-2] < 1.0 - 1e-9
    expected = 2 if graph == "ring" and ranks > 2 else (ranks - 1).bit_length() if graph == "exponential" else ranks - 1
    assert degrees == {expected}


def test_unknown_graph():
    with pytest.raises(ValueError, match="graph must be one of"):
        neighbours("star", 0, 4)


@pytest.mark.parametrize("graph,compression", [(g, None) for g in GRAPHS] + [("exponential", "natural")])
def test_gossip_keeps_the_average_across_ranks(graph, compression):
    out = run_mpi("gossip.py", 4, graph, 30, *([compression] if compression else []), timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["average_kept"] < 1e-10, found
    if out.ranks > 1:
        # compressed, what a rank sends shrinks as the ranks agree, but each round still rounds it
        agreed = 1e-6 if compression is None else 1e-2
        assert found["spread_before"] > 0.1 and found["spread_after"] < agreed * found["spread_before"], found
    assert found["final_is_the_average"] < 1e-12 and found["same_final"]
    clock, updates, steps = found["counts"]
    assert clock == 30 + 60 and updates == found["expected_updates"] == steps
    assert found["bytes_right"]  # the whole copy to each out-neighbour, every round


@pytest.mark.parametrize("exchange,graph", [("gossip", "exponential"), ("gossip", "ring"), ("async_gossip", "ring")])
def test_cli_trains_over_gossip(tmp_path, exchange, graph):
    out = run_mpi("dpsgd", 4, "train", "linear", "--epochs", 2, "--threads", 1, "--exchange", exchange,
                  "--graph", graph, "--save", tmp_path / "model.npz", "--quiet", timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{out.ranks} ranks ({exchange})" in out.stdout
    assert (tmp_path / "model.npz").exists()


def test_a_graph_needs_a_gossip_exchange():
    from dpsgd import LatentDirichletAllocation, SGDClassifier

    with pytest.raises(ValueError, match="gossip_graph must be one of"):
        SGDClassifier(exchange="gossip", gossip_graph="star", comm=object()).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="is the graph of exchange='gossip' or 'async_gossip'"):
        LatentDirichletAllocation(2, exchange="server", gossip_graph="ring").fit([[1, 2], [3, 4]])
    out = run_mpi("dpsgd", 2, "train", "linear", "--graph", "ring", "--quiet", timeout=120)
    assert out.returncode == 2 and "--graph ring is the graph of --exchange gossip or async_gossip" in out.stderr


def test_async_gossip_averages_whole_pairs_across_ranks():
    """AD-PSGD's pairwise averages are atomic: in the order they were applied, every average
    read of each row exactly what the previous one touching it left (without the row mutexes
    the chain breaks), and the copies sum to the start times the ranks plus every change."""
    out = run_mpi("async_gossip.py", 4, 200, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["sum_error"] < 1e-9 and found["versions_unique"] and found["same_final"], found
    assert found["bytes_right"] and found["pairs_whole"] and found["averages"] == (found["pushes"] if out.ranks > 1 else 0), found
    assert found["clock"] == found["pushes"]
    if out.ranks > 1:
        assert found["spread_before"] > 0.5 and found["spread_after"] < 1e-3 * found["spread_before"], found


def test_network_models():
    from dpsgd.comm.network import PRESETS, Network, make_network

    assert make_network(None) is None and make_network("1GbE") is PRESETS["1GbE"]
    model = make_network("latency=1e-4,bandwidth=1e8,slow_rank=1,slow_factor=3")
    assert model == Network(latency=1e-4, bandwidth=1e8, slow_rank=1, slow_factor=3.0)
    assert model.describe() == "latency=0.0001,bandwidth=100000000.0,slow_rank=1,slow_factor=3.0"
    assert make_network({"latency": 0.5}) == Network(latency=0.5)
    for bad, match in [("2GbE", "must be one of"), ("speed=3", "unknown network field"), ({"lag": 1}, "unknown"),
                       ("latency=-1", "latency out of range"), ("slow_factor=0.5", "slow_factor"),
                       ("latency=fast", "must be a number"), (3, "must be None"), ({"slow_rank": -1}, "slow_rank")]:
        with pytest.raises(ValueError, match=match):
            make_network(bad)


def test_simulated_network_adds_latency_bandwidth_and_a_straggler():
    """Over 2 real ranks of the server, 1 MB/s and 2 ms a message: each round's pull and push
    of 100 doubles adds 2 x (2 ms + 0.8 ms); rank 1 is 4x slower at computing. The seconds
    added are in the statistics, and the model in the log."""
    out = run_mpi("network.py", 2, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    for rank in found:
        expected = rank["pushes"] * 2 * (2e-3 + 800 / 1e6) + (3 * rank["compute"] if rank["slow"] else 0.0)
        # the straggler sleeps 3x its round's wall time from pull to push, which is the engine's
        # compute plus its bookkeeping: more under load (4% more with two other jobs running)
        assert expected * 0.98 <= rank["network_seconds"] <= expected * 1.15, found
        assert rank["network"] == "latency=0.002,bandwidth=1000000.0,slow_rank=1,slow_factor=4.0"
        assert rank["seconds"] >= rank["network_seconds"]


def test_cli_notes_a_network_without_ranks(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dpsgd", "train", "linear", "--network", "1GbE", "--epochs", "1",
                          "--quiet"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "one process ignores --network" in out.stderr
    out = subprocess.run([sys.executable, "-m", "dpsgd", "train", "linear", "--network", "2GbE"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "must be one of" in out.stderr
