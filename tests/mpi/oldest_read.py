"""The delay the engine's policies see across ranks: ``oldest_read.py POLICY``. Rank 0 is 8x
slower than the others (its own delay jumps); rank 0 audits every push of every rank against
the oldest-read contract (tests/engine_toys.audit_oldest_read) and prints what it found."""
import json
import sys
from pathlib import Path

from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_toys import Paced, Recording, audit_oldest_read  # noqa: E402

from dpsgd import engine  # noqa: E402
from dpsgd.comm import Topology, abort_on_exception  # noqa: E402
from dpsgd.stepsize import delay_policy  # noqa: E402

abort_on_exception()
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
problem = Paced(8, 0.016) if rank == 0 else Paced(40, 0.002)
policy = Recording(delay_policy(sys.argv[1], delay="oldest_read"))
result = engine.run(problem, Topology(comm), exchange="server", policy=policy, in_place=False)
summary = result.stats.summary()  # 16 bytes (2 doubles) pulled and pushed a round
bytes_right = summary["bytes_sent"] == summary["bytes_received"] == 16 * summary["pushes"]
everything = comm.gather((policy.records, result.stats.delays, result.stats.taus, result.model["w"], bytes_right),
                         root=0)
if rank == 0:
    found = audit_oldest_read([r for e in everything for r in e[0]], [d for e in everything for d in e[1]])
    found["taus_are_the_policys"] = all(e[2] == [r[1] for r in e[0]] for e in everything)
    found["bytes_right"] = all(e[4] for e in everything)
    found["final_is_the_scale_sum"] = float(abs(everything[0][3] - found["scale_sum"]).max())
    print(json.dumps(found))
