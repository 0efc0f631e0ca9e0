"""Offline bundles: one tar stream (optionally zstd) holding a manifest and the items
(engine images, models, recipes, a wheelhouse, engine binaries) an air-gapped host needs.

The format is specified in bundles/FORMAT.md. Modules: tarstream (the one bounded tar
reader and the bundle walk, stdlib-only, shared with scripts/bundle_bootstrap.py),
zstdframes and trustdir (stdlib-only too: zstd frame checks, which key files to trust),
manifest (the model + checks), container (the zstd layer, writing), signing (ed25519),
definition + export (build a bundle), content (what a bundle may install), install and
transaction (import, atomically), recipes_adapter (the recipe rows, committed with the
ledger), ledger (what was imported).
"""
