"""Client processes (module level, so 'spawn' children can import them). Each reports on a queue:
(name, report) or (name, "error", traceback). Every loop is bounded in count and in time."""
from __future__ import annotations

import time
import traceback
from datetime import timedelta
from typing import Any

import requests

from tests.reliability.harness import item_key, journey, now, post_json, statement


def chain_client(base: str, n: int, items: int, deadline_s: float, barrier: Any, out: Any) -> None:
    """Client ``n`` owns parties ``rl-mk-{n}`` (manufacturer) and ``rl-wh-{n}`` (warehouse, retailer) and walks
    ``items`` items through commission → ship → receive → sell, alternating single posts and batches, and
    re-posting some envelopes (a retry after a lost answer must not make a second leaf).
    Report: {"acks": [[event_id, leaf_index, status]], "items": [...], "chains": {item: [event ids]},
             "duplicates": n, "posted": n, "statuses": {status: count}}."""
    name = f"client-{n}"
    try:
        maker, holder = f"rl-mk-{n}", f"rl-wh-{n}"
        start = now() - timedelta(minutes=50) + timedelta(seconds=5 * n)
        plans = [journey(maker, holder, f"C{n}I{i:03d}", start + timedelta(seconds=4 * i)) for i in range(items)]
        acks: list[list[Any]] = []
        statuses: dict[int, int] = {}
        posted = duplicates = 0
        stop_at = time.monotonic() + deadline_s
        with requests.Session() as http:
            barrier.wait(timeout=120)
            began = time.monotonic()
            for i, plan in enumerate(plans):
                assert time.monotonic() < stop_at, f"{name}: out of time after {i} items"
                if i % 2 == 0:
                    for env in plan:
                        r = post_json(http, f"{base}/api/v1/events", env.to_json())
                        posted += 1
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        assert r.status_code == 201, f"{name}: {r.status_code} {r.text[:300]}"
                        body = r.json()
                        assert body["event_id"] == env.event_id
                        acks.append([body["event_id"], body["leaf_index"], 201])
                else:
                    r = post_json(http, f"{base}/api/v1/events/batch", {"envelopes": [e.to_json() for e in plan]})
                    posted += len(plan)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    assert r.status_code == 200, f"{name}: batch {r.status_code} {r.text[:300]}"
                    for env, res in zip(plan, r.json()["results"], strict=True):
                        assert "error" not in res, f"{name}: {res}"
                        assert res["event_id"] == env.event_id
                        acks.append([res["event_id"], res["leaf_index"], 200])
                if i % 3 == 0:  # a retry of an acknowledged envelope: 200, the same ids
                    env = plan[i % len(plan)]
                    first = next(a for a in acks if a[0] == env.event_id)
                    r = post_json(http, f"{base}/api/v1/events", env.to_json())
                    duplicates += 1
                    assert r.status_code == 200, f"{name}: replay {r.status_code} {r.text[:300]}"
                    assert r.json() == {"event_id": first[0], "leaf_index": first[1]}
        out.put((name, {"acks": acks, "items": [item_key(f"C{n}I{i:03d}") for i in range(items)],
                        "chains": {item_key(f"C{n}I{i:03d}"): [e.event_id for e in plan] for i, plan in enumerate(plans)},
                        "duplicates": duplicates, "posted": posted, "seconds": time.monotonic() - began,
                        "statuses": {str(k): v for k, v in statuses.items()}}))
    except BaseException:
        out.put((name, "error", traceback.format_exc()))


def racing_shipper(base: str, n: int, rounds: list[dict[str, str]], barrier: Any, out: Any) -> None:
    """Device ``n`` of ``rl-race`` ships each round's item from the same ``prev`` (the commission) as the other
    racer, to its own recipient, released by a shared barrier. Report: [[round, status, event_id, leaf_index]]."""
    name = f"racer-{n}"
    try:
        results = []
        with requests.Session() as http:
            for r, spec in enumerate(rounds):
                env = statement("ship", "rl-race", at=now() - timedelta(minutes=20) + timedelta(seconds=r), device=n,
                                items=[spec["item"]], to=f"rl-dest-{n}", prev={spec["item"]: spec["commission"]})
                barrier.wait(timeout=60)
                resp = post_json(http, f"{base}/api/v1/events", env.to_json(), timeout=30)
                body = resp.json()
                results.append([r, resp.status_code, body.get("event_id"), body.get("leaf_index")])
        out.put((name, results))
    except BaseException:
        out.put((name, "error", traceback.format_exc()))
