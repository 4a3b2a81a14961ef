"""``python -m devstack``: run the local stack until Ctrl-C or SIGTERM."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from typing import Any

QUIET_LOGGERS = ("werkzeug", "moto", "botocore", "boto3", "urllib3", "jsonpath_ng")


def main() -> int:
    """Start, wait for a signal, stop cleanly."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    log, stop_requested = logging.getLogger("devstack"), threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    from devstack.app import StackStartError, start
    from devstack.cfn import TemplateError

    try:
        stack = start()
    except (StackStartError, TemplateError, FileNotFoundError) as error:
        log.error("cannot start the local stack: %s", error)
        return 1
    try:
        stop_requested.wait()
    finally:
        stack.stop()
    gc.freeze()  # skip collecting moto's large object graph at exit: Ctrl-C returns twice as fast
    return 0


if __name__ == "__main__":
    sys.exit(main())
