"""Single-purpose commands (`python -m execution.NAME`); plumbing in execution/lib/.

numpy (the escalation examples' sentence encoder) is told to use one BLAS thread per caller before
anything imports it: replies are answered on hundreds of threads, and OpenBLAS's own thread pool,
built for at most 64, crashes the process when many of them multiply at once (and one thread is
faster for these small products anyway).
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
