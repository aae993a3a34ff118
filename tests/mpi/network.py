"""The simulated network across real ranks: 2 ms a message, 1 MB/s, rank 1 four times slower.
Prints, per rank, the seconds the model added and what they should be made of."""
import json
import sys
import time
from pathlib import Path

from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_toys import Paced  # noqa: E402

from dpsgd import engine  # noqa: E402
from dpsgd.comm import Topology, abort_on_exception  # noqa: E402

abort_on_exception()
comm = MPI.COMM_WORLD


class Wide(Paced):
    size = 100


problem = Wide(10, 0.004)
tic = time.perf_counter()
result = engine.run(problem, Topology(comm), exchange="server", in_place=False,
                    network="latency=0.002,bandwidth=1e6,slow_rank=1,slow_factor=4")
stats = result.stats.summary()
mine = {"pushes": stats["pushes"], "compute": stats["compute_seconds"], "slow": comm.Get_rank() == 1,
        "network_seconds": stats["network_seconds"], "network": stats["network"],
        "seconds": time.perf_counter() - tic}
everything = comm.gather(mine, root=0)
if comm.Get_rank() == 0:
    print(json.dumps(everything))
