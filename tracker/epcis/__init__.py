"""EPCIS 2.0 / CBV 2.0 for Waybill (docs/epcis.md): events in, events out, the same signatures.

``vocab`` the mapping table and CBV words · ``epc`` EPC URNs, Digital Links, location and party URIs ·
``schema`` GS1's JSON Schema · ``hashing`` CBV 2.0 event hash IDs (the reference package, wrapped) ·
``mapping`` one event ↔ one statement · ``importer`` planning statements against a ledger view ·
``state`` that view over a local ledger · ``ingest`` sign and append (``tracker epcis import``) ·
``export``/``query`` EPCIS documents with ledger links · ``capture`` party-signed captures · ``cli``."""
