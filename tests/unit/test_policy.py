"""C2SP tlog-policy files: parsing by the spec's rules, and quorum evaluation as attackers would probe it."""
from __future__ import annotations

import pytest

from tests.c2sp import ref
from tests.conftest import fixed_key
from tracker.checkpoint import Checkpoint, sign_checkpoint, vkey_string
from tracker.errors import InvalidInput, VerificationError
from tracker.policy import check_checkpoint, parse_policy

LOG = fixed_key("policy-log")
ORIGIN = "log.example/p"
LOG_VKEY = vkey_string(ORIGIN, LOG.public_key)
WS = {f"X{i}": fixed_key(f"policy-w{i}") for i in range(1, 4)} | {f"Y{i}": fixed_key(f"policy-y{i}") for i in range(1, 4)}
VK = {n: ref.vkey(f"w.example/{n}", 4, k.public_key) for n, k in WS.items()}

SPEC_EXAMPLE = f"""# the example of c2sp.org/tlog-policy, with real keys
log {LOG_VKEY}

witness X1 {VK['X1']}
witness X2 {VK['X2']}
\twitness X3 {VK['X3']}   http://127.0.0.1:1/
group X-witnesses 2 X1 X2 X3

witness Y1 {VK['Y1']}
witness Y2 {VK['Y2']}
witness Y3 {VK['Y3']}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def test_spec_example_quorum() -> None:
    p = parse_policy(SPEC_EXAMPLE)
    assert len(p.logs) == 1 and len(p.witnesses) == 6 and p.witness_named("X3").url == "http://127.0.0.1:1/"
    assert p.satisfied({"X1", "X3", "Y2"})
    assert not p.satisfied({"X1", "Y1", "Y2", "Y3"})  # one X is not two
    assert not p.satisfied({"X1", "X2", "X3"})  # no Y
    assert not p.satisfied({"X-witnesses", "Y-witnesses"})  # group names are not witnesses that cosigned
    assert parse_policy(f"log {LOG_VKEY}\nquorum none\n").satisfied(set())


@pytest.mark.parametrize("text, why", [
    ("", "no quorum"),
    ("quorum X1\n", "undefined quorum"),
    (f"witness X1 {VK['X1']}\nquorum X1\nquorum X1\n", "two quorum lines"),
    (f"group G any X1\nwitness X1 {VK['X1']}\nquorum G\n", "member defined later"),
    (f"witness X1 {VK['X1']}\nwitness X2 {VK['X1']}\nquorum X1\n", "duplicate witness key"),
    (f"witness X1 {VK['X1']}\nwitness X1 {VK['X2']}\nquorum X1\n", "duplicate name"),
    (f"witness X1 {VK['X1']}\ngroup G 2 X1\nquorum G\n", "threshold above members"),
    (f"witness X1 {VK['X1']}\ngroup G 0 X1\nquorum G\n", "zero threshold"),
    (f"witness X1 {VK['X1']}\ngroup G any X1 X1\nquorum G\n", "member twice"),
    (f"witness X1 {VK['X1']}\ngroup G any none\nquorum G\n", "none as member"),
    (f"witness none {VK['X1']}\nquorum none\n", "witness named none"),
    (f"witness X1 {LOG_VKEY}\nquorum X1\n", "log key (type 0x01) as witness"),
    (f"log {VK['X1']}\nquorum none\n", "witness key as log"),
    (f"witness X1 {VK['X1']}\x0b\nquorum X1\n", "control character"),
    (f"witness X1 {VK['X1']}=\nquorum X1\n", "non-canonical base64"),
    (f"witnesses X1 {VK['X1']}\nquorum X1\n", "unknown keyword"),
])
def test_bad_policies_are_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidInput):
        parse_policy(text)


def _cosigned(size: int, names: list[str]) -> str:
    cp = Checkpoint(origin=ORIGIN, size=size, root_hash=ref.mth([ref.leaf(b"%d" % i) for i in range(size)]))
    note = sign_checkpoint(cp, name=ORIGIN, key=LOG)
    for n in names:
        note += ref.cosignature_line(cp.body(), name=f"w.example/{n}", seed=WS[n].seed, timestamp=1_700_000_000) + "\n"
    return note


def test_check_checkpoint_counts_only_valid_policy_cosignatures() -> None:
    p = parse_policy(SPEC_EXAMPLE)
    r = check_checkpoint(_cosigned(9, ["X1", "X2", "Y3"]), p, origin=ORIGIN)
    assert r.quorum_met and set(r.witnessed_by) == {"X1", "X2", "Y3"} and r.summary() == "3 of 6 witnesses"
    r = check_checkpoint(_cosigned(9, ["X1", "Y3"]), p, origin=ORIGIN)
    assert not r.quorum_met
    # an attacker copying a cosignature from another checkpoint: it does not verify, and the note is refused
    other = _cosigned(10, ["X2"]).rsplit("\n", 2)[-2]
    with pytest.raises(VerificationError):
        check_checkpoint(_cosigned(9, ["X1", "Y3"]) + other + "\n", p, origin=ORIGIN)
    # a checkpoint signed by a key the policy does not list
    stranger = sign_checkpoint(Checkpoint(origin=ORIGIN, size=1, root_hash=ref.leaf(b"0")), name=ORIGIN,
                               key=fixed_key("stranger"))
    with pytest.raises(VerificationError):
        check_checkpoint(stranger, p, origin=ORIGIN)
