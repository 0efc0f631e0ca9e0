"""One gateway worker process of `cortexctl serve --workers N` (started by workers.start_worker):
`python -m cortex_server.worker_main INDEX COUNT`, the daemon's settings pickled on stdin."""

from __future__ import annotations

import pickle
import sys

from cortex_server.workers import WorkerRole, run_worker


def main() -> None:
    index, count = (int(arg) for arg in sys.argv[1:3])
    run_worker(pickle.loads(sys.stdin.buffer.read()), WorkerRole(index, count))


if __name__ == "__main__":
    main()
