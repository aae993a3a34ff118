import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# BENCH_SCALE=0.1 shrinks the generated data for a quick look.
SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
