"""What the ledger needs from storage. Kept free of SQL so the core can be read (and tested) alone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager, Iterable, Iterator, Mapping, Protocol, Sequence

from ..merkle import NodeId

__all__ = ["StoredEntry", "StoredCheckpoint", "ReadTxn", "WriteTxn", "Store"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEntry:
    leaf_index: int
    event_id: str
    type: str
    actor: str
    time: str
    leaf_data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str
    created_at: str


class ReadTxn(Protocol):
    def tree_size(self) -> int: ...
    def entry_count(self, below: int | None = None, start: int = 0) -> int: ...
    def nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]: ...
    def nodes_between(self, spans: Sequence[tuple[int, int, int]]) -> dict[NodeId, bytes]: ...
    def entry_by_event_id(self, event_id: str) -> StoredEntry | None: ...
    def entries_by_event_ids(self, event_ids: Iterable[str]) -> dict[str, StoredEntry]: ...
    def entries_at(self, leaf_indexes: Iterable[int]) -> dict[int, StoredEntry]: ...
    def iter_entries(self, start: int = 0, batch: int = 2000) -> Iterator[StoredEntry]: ...
    def leaves_for_keys(self, keys: Iterable[str]) -> dict[str, list[int]]: ...
    def keys_exist(self, keys: Iterable[str]) -> set[str]: ...
    def key_events_between(self, lo: int, hi: int) -> set[tuple[str, int]]: ...
    def party_keyids(self) -> dict[str, str]: ...
    def party_record(self, party_id: str) -> str | None: ...
    def party_records_for(self, party_ids: Iterable[str]) -> dict[str, str]: ...
    def party_records(self) -> dict[str, str]: ...
    def party_for_keyid(self, keyid: str) -> str | None: ...
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]: ...
    def meta(self) -> Mapping[str, str]: ...


class WriteTxn(ReadTxn, Protocol):
    def add_entries(self, rows: Sequence[StoredEntry], *, ingested_at: str) -> None: ...
    def add_nodes(self, rows: Sequence[tuple[int, int, bytes]]) -> None: ...
    def add_key_events(self, rows: Sequence[tuple[str, int]]) -> None: ...
    def put_party(self, party_id: str, record_json: str, leaf_index: int, keyids: Sequence[str]) -> None: ...
    def add_checkpoint(self, cp: StoredCheckpoint) -> None: ...
    def set_meta(self, values: Mapping[str, str]) -> None: ...


class Store(Protocol):
    url: str

    def read(self) -> ContextManager[ReadTxn]: ...
    def write(self) -> ContextManager[WriteTxn]: ...
    def close(self) -> None: ...


# --- accounts and customs (tracker.accounts, tracker.customs) ------------------------------------------
# Staff accounts and browser device enrolments are operational data, not ledger evidence: they live in
# their own tables, and what matters for trust (a device key joining a party) still goes through a signed
# `party` statement in the ledger.

@dataclass(frozen=True, slots=True, kw_only=True)
class StoredUser:
    id: int
    username: str
    password_hash: str
    party_id: str
    role: str
    created_at: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDevice:
    id: int
    keyid: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    user_id: int
    party_id: str
    label: str
    status: str  # pending | approved | rejected | revoked
    requested_at: str
    decided_at: str | None = None
    decided_by: str | None = None
    event_id: str | None = None


class AccountsReadTxn(Protocol):
    def user_by_id(self, user_id: int) -> StoredUser | None: ...
    def user_by_name(self, username: str) -> StoredUser | None: ...
    def list_users(self) -> list[StoredUser]: ...
    def device_by_id(self, device_id: int) -> StoredDevice | None: ...
    def device_by_keyid(self, keyid: str) -> StoredDevice | None: ...
    def list_devices(self, *, user_id: int | None = None, party_id: str | None = None,
                     status: str | None = None) -> list[StoredDevice]: ...
    def entries_of_types(self, types: Iterable[str], *, start: int = 0, batch: int = 2000) -> Iterator[StoredEntry]: ...


class AccountsWriteTxn(AccountsReadTxn, Protocol):
    def add_user(self, *, username: str, password_hash: str, party_id: str, role: str, created_at: str) -> int: ...
    def update_user(self, user_id: int, *, password_hash: str | None = None, disabled: bool | None = None,
                    failed_logins: int | None = None, locked_until: str | None = ...) -> None: ...
    def add_device(self, *, keyid: str, public_key: str, user_id: int, party_id: str, label: str,
                   requested_at: str) -> int: ...
    def set_device_status(self, device_id: int, *, status: str, decided_at: str, decided_by: str | None,
                          event_id: str | None = None) -> None: ...


__all__ += ["StoredUser", "StoredDevice", "AccountsReadTxn", "AccountsWriteTxn"]


# --- witness cosignatures (tracker.cosigning; migration 0006_cosignatures) ----------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCosignature:
    cosigner: str
    key_id: str  # 8 hex digits
    tree_size: int
    line: str
    timestamp: int
    received_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredWitnessStatus:
    cosigner: str
    url: str
    cosigned_size: int
    failures: int
    last_error: str | None
    alarm: str | None
    updated_at: str


class CosignReadTxn(Protocol):
    def checkpoint_at(self, size: int) -> StoredCheckpoint | None: ...
    def checkpoint_sizes_at_least(self, size: int, limit: int) -> list[int]: ...
    def cosignatures_at(self, size: int) -> list[StoredCosignature]: ...
    def cosigned_sizes(self, min_cosigners: int, limit: int = 50) -> list[int]: ...
    def witness_statuses(self) -> list[StoredWitnessStatus]: ...


class CosignWriteTxn(CosignReadTxn, Protocol):
    def add_cosignature(self, row: StoredCosignature) -> None: ...
    def put_witness_status(self, row: StoredWitnessStatus) -> None: ...


__all__ += ["StoredCosignature", "StoredWitnessStatus", "CosignReadTxn", "CosignWriteTxn"]
