"""``python -m devstack``: run the local stack until Ctrl-C or SIGTERM."""

import gc
import logging
import signal
import sys
import threading

from devstack.app import StackStartError, start
from devstack.cfn import TemplateError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%X")
    for name in ("werkzeug", "moto", "botocore", "boto3", "urllib3", "jsonpath_ng"):
        logging.getLogger(name).setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    try:
        stack = start()
    except (StackStartError, TemplateError, FileNotFoundError) as error:
        logging.error("cannot start the local stack: %s", error)
        return 1
    try:
        stop.wait()
    finally:
        stack.stop()
        logging.getLogger("devstack").info("local stack stopped")
    gc.freeze()  # skip collecting moto's large object graph at exit: Ctrl-C returns twice as fast
    return 0


if __name__ == "__main__":
    sys.exit(main())
