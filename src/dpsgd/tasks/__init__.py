"""One thin module per workload, wiring kernels, engine and data into public estimators."""

# every task, so that importing the package registers each estimator with dpsgd.persist
# (load_model imports this package before it looks a class up)
from dpsgd.tasks import a2c, lda, linear, logistic  # noqa: F401
