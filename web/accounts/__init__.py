"""Staff accounts: users with a party and a role, their sign-in sessions, and their browsers' device keys.
A web concern (the core knows nothing of people or passwords); the tables sit beside the ledger's, reached
only through ``web.db``.
"""
from __future__ import annotations

from .devices import (CUSTOMS_TYPES, DEVICE_STATUSES, STAFF_TYPES, Device, approval_statement,
                      approve_device_with_key, authorize_envelopes, get_device, list_devices, record_approval,
                      record_revocation, reject_device, request_device, revocation_statement)
from . import passwords
from .passwords import hash_password, is_correct_password, needs_rehash
from .users import (DEMO_USERS, LOCKOUT, MAX_FAILED_LOGINS, USER_ROLES, AccountLocked, AuthenticationError,
                    Forbidden, User, authenticate, create_user, end_session, ensure_demo_users, get_user,
                    list_users, session_user, set_disabled, set_password, start_session)

__all__ = [
    "USER_ROLES", "DEVICE_STATUSES", "STAFF_TYPES", "CUSTOMS_TYPES", "DEMO_USERS", "MAX_FAILED_LOGINS", "LOCKOUT",
    "User", "Device", "AuthenticationError", "AccountLocked", "Forbidden", "passwords",
    "hash_password", "is_correct_password", "needs_rehash",
    "create_user", "authenticate", "get_user", "list_users", "set_password", "set_disabled",
    "start_session", "session_user", "end_session",
    "request_device", "get_device", "list_devices", "reject_device",
    "approval_statement", "revocation_statement", "record_approval", "record_revocation",
    "approve_device_with_key", "authorize_envelopes", "ensure_demo_users",
]
