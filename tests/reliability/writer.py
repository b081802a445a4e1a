"""A writer process that is not the server: it opens the installation's ledger the way the `tracker` CLI
does (``open_ledger`` with the ledger key) and appends batches read from a JSON file, announcing each batch
before it starts and every acknowledged result after its commit. The crash tests kill it with SIGKILL.

    python -m tests.reliability.writer BATCHES.json      (WAYBILL_HOME / WAYBILL_DATABASE_URL from the env)

Output lines: ``START k`` / ``ACK event_id leaf_index`` / ``DONE k``.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from tracker.home import open_ledger
from tracker.ledger import AppendResult


def main(path: str) -> int:
    batches = json.loads(open(path).read())
    ledger = open_ledger()
    out = sys.stdout
    for k, batch in enumerate(batches):
        out.write(f"START {k}\n")
        out.flush()
        results = ledger.append_batch(batch, now=datetime.now(timezone.utc))
        for r in results:
            if not isinstance(r, AppendResult):
                out.write(f"ERROR {r.code} {r}\n")
                return 1
            out.write(f"ACK {r.event_id} {r.leaf_index}\n")
        out.write(f"DONE {k}\n")
        out.flush()
    ledger.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
