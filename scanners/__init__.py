"""Waybill scanning clients: QR labels (``labels``), image decoding (``decode``), and the handheld
``scanner`` program (``cli``) with its API client (``client``) and offline queue (``outbox``).

Scanners are clients like any third party's: they use the core's pure modules (identifiers, keys, DSSE,
signing) and speak only the public JSON API; they never touch the ledger or its storage.
"""
