"""Offline bundles: one tar stream (optionally zstd) holding a manifest and the items
(engine images, models, recipes, a wheelhouse, engine binaries) an air-gapped host needs.

The format is specified in bundles/FORMAT.md. Modules: manifest (the model + checks),
container (read/write the stream, verifying while it streams), signing (ed25519),
definition + export (build a bundle), install (import, atomically), ledger (what was
imported).
"""
