"""One thin module per workload, wiring kernels, engine and data into public estimators."""
