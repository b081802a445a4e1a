"""A writer process with many threads, each appending single envelopes the way the web's request threads do
(``Ledger.append``, so concurrent appends share group commits). The group-commit crash test kills it with
SIGKILL while followers wait behind a leader.

    python -m tests.reliability.group_writer ENVELOPES.json THREADS    (WAYBILL_HOME / _DATABASE_URL from env)

Output lines: ``ACK event_id leaf_index created`` after each append returns, ``ERROR event_id code`` for a refusal,
``STATS groups requests`` every 50 acknowledgements and at the end, then ``DONE``.
"""
from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone

from tracker.errors import TrackerError
from tracker.home import open_ledger


def main(path: str, threads: int) -> int:
    envelopes = json.loads(open(path).read())
    ledger = open_ledger()
    assert ledger.group is not None, "group commit is off"
    out = sys.stdout
    lock = threading.Lock()
    queue = iter(envelopes)
    acked = 0

    def say(line: str) -> None:
        nonlocal acked
        with lock:
            out.write(line)
            if line.startswith("ACK"):
                acked += 1
                if acked % 50 == 0:
                    out.write(f"STATS {ledger.group.groups} {ledger.group.requests}\n")
            out.flush()

    def work() -> None:
        while True:
            with lock:
                env = next(queue, None)
            if env is None:
                return
            try:
                r = ledger.append(env, now=datetime.now(timezone.utc))
            except TrackerError as exc:
                say(f"ERROR {exc.code} {exc}\n")
                continue
            say(f"ACK {r.event_id} {r.leaf_index} {int(r.created)}\n")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    say(f"STATS {ledger.group.groups} {ledger.group.requests}\nDONE\n")
    ledger.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
