"""`cortexctl bundle`: export, inspect, verify, import and list offline bundles; keys and signing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, err_console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table

if TYPE_CHECKING:  # the bundle code (SQLAlchemy, zstd, crypto) is imported by the commands that use it
    from rich.progress import Progress as RichBar
    from rich.progress import TaskID

app = typer.Typer(
    help="Offline bundles: export on a connected host, verify and import on an air-gapped one.",
    no_args_is_help=True,
)

BundleArg = Annotated[Path, typer.Argument(help="The bundle file.", exists=True, dir_okay=False)]
AllowUnsignedOpt = Annotated[
    bool, typer.Option("--allow-unsigned", help="Accept a bundle without a signature from a trusted key.")
]


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=600)


class RichProgress:
    """The core's Progress protocol on a rich bar: bytes, bytes/s and ETA, on stderr."""

    def __init__(self, bar: RichBar) -> None:
        self.bar = bar
        self.task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        self.task = self.bar.add_task(label, total=total or None)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)

    def finish(self) -> None:
        if self.task is not None:
            task = self.bar.tasks[self.task]
            self.bar.update(self.task, total=task.completed, completed=task.completed)
            self.task = None


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[RichProgress]:
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.progress import Progress as RichBar

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with RichBar(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        yield RichProgress(bar)


@app.command("export")
def export(
    definition: Annotated[Path, typer.Argument(help="Bundle definition (bundles/*.yaml).", exists=True)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle file to write.")],
    compression: Annotated[str, typer.Option(help="zstd or none.")] = "zstd",
    level: Annotated[int, typer.Option(help="zstd level (1-19).", min=1, max=19)] = 3,
    sign_key: Annotated[Path | None, typer.Option("--sign-key", help="Sign with this ed25519 key.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Build a bundle from a definition (images via Docker, models, recipes, wheels, engines)."""
    from cortexctl.bundles.export import export_bundle
    from cortexctl.engines.cache import default_cache_root

    with progress_bar(not json_out) as progress:
        result = export_bundle(
            definition,
            output=output,
            engine_cache_dir=default_cache_root(),
            compression=compression,
            level=level,
            sign_key=sign_key,
            docker_factory=docker_client,
            progress=progress,
        )
    if json_out:
        print_json(
            {
                "path": str(result.path),
                "bundle_id": result.bundle_id,
                "size": result.size,
                "items": len(result.manifest.items),
                "signed_by": result.signed_by,
            }
        )
        return
    signed = f"signed by {result.signed_by}" if result.signed_by else "unsigned"
    console.print(
        f"Wrote [bold]{result.path}[/] ({_size(result.size)}, {len(result.manifest.items)} items, "
        f"{signed}, id {result.bundle_id[:12]})"
    )


@app.command("inspect")
def inspect(ctx: typer.Context, bundle: BundleArg, json_out: JsonOpt = False) -> None:
    """Show the manifest and signature status (reads only the head of the file)."""
    from cortexctl.bundles.container import read_head
    from cortexctl.bundles.install import trusted_dir
    from cortexctl.bundles.signing import trusted_keys

    head = read_head(bundle)
    keys = trusted_keys(trusted_dir(settings_of(ctx)))
    sig = "unsigned"
    if head.signature is not None:
        trusted = head.signature.key_id in keys
        trust = "trusted" if trusted else "NOT trusted on this host"
        sig = f"signed by {head.signature.key_id} ({trust}; unverified)"
    if json_out:
        print_json(
            {
                "bundle_id": head.id,
                "compression": head.compression,
                "signature": sig,
                "manifest": head.manifest.model_dump(mode="json"),
            }
        )
        return
    m = head.manifest
    console.print(f"[bold]{m.name}[/] {m.description}".rstrip())
    console.print(
        f"  id {head.id[:12]}  format v{m.format_version}  created {m.created_at:%Y-%m-%d %H:%M} by "
        f"{m.created_by}  cortex {m.cortex_version}  {m.platform.python_tag} {m.platform.platform}"
    )
    console.print(f"  compression {head.compression}  signature: {sig}")
    table = Table("kind", "name", "size", "sha256")
    for item in m.items:
        table.add_row(item.kind, item.name, _size(item.size), item.sha256[:16] + "…")
    console.print(table)
    console.print(f"  {len(m.items)} items, {_size(m.total_size)}")
    if m.distributions:  # format v2: the signed list the wheelhouse must match
        listed = ", ".join(f"{d.name} {d.version}" for d in m.distributions)
        console.print(f"  wheelhouse distributions (signed list): {listed}")


@app.command("verify")
def verify(
    ctx: typer.Context, bundle: BundleArg, allow_unsigned: AllowUnsignedOpt = False, json_out: JsonOpt = False
) -> None:
    """Check the signature and every checksum, streaming; installs nothing."""
    from cortexctl.bundles.install import verify_bundle

    with progress_bar(not json_out) as progress:
        head, status = verify_bundle(
            bundle, settings=settings_of(ctx), allow_unsigned=allow_unsigned, progress=progress
        )
    if json_out:
        print_json(
            {
                "bundle_id": head.id,
                "ok": True,
                "signature": status.state,
                "signed_by": status.key_id,
                "warnings": status.warnings,
                "items": len(head.manifest.items),
            }
        )
        return
    for warning in status.warnings:
        err_console.print(f"warning: {warning}")
    console.print(
        f"[green]OK[/] {bundle.name}: {len(head.manifest.items)} items verified, signature {status.state}"
        + (f" ({status.key_id})" if status.key_id else "")
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    bundle: BundleArg,
    allow_unsigned: AllowUnsignedOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Re-install even if this bundle was imported.")
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace models, recipes and files that exist here with different content "
            "(never breaks another recipe's sha256 pin).",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Verify, then install atomically: images into Docker, models, recipes, wheelhouse, engines."""
    from cortexctl.bundles.install import import_bundle
    from cortexctl.engines.cache import default_cache_root

    with progress_bar(not json_out) as progress:
        result = import_bundle(
            bundle,
            settings=settings_of(ctx),
            engine_cache_dir=default_cache_root(),
            allow_unsigned=allow_unsigned,
            force=force,
            replace=replace,
            docker_factory=docker_client,
            progress=progress,
        )
    if json_out:
        print_json(
            {
                "bundle_id": result.bundle_id,
                "name": result.name,
                "status": result.status,
                "signature": result.signature.state,
                "recovered": result.recovered,
                "warnings": result.signature.warnings,
                "items": [i.model_dump() for i in result.items],
            }
        )
        return
    for warning in result.signature.warnings:
        err_console.print(f"warning: {warning}")
    if result.recovered:
        err_console.print(f"note: {result.recovered}")
    if result.status == "already-imported":
        console.print(f"{result.name} ({result.bundle_id[:12]}) is already imported; nothing to do.")
        return
    console.print(f"[green]Imported[/] {result.name} ({result.bundle_id[:12]}): {len(result.items)} items.")
    for item in result.items:
        console.print(f"  {item.kind:<13} {item.name} → {item.installed_to}")


@app.command("list")
def list_(ctx: typer.Context, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """What was imported, when, and from which file."""
    from cortexctl.bundles.install import list_imports

    entries = list_imports(settings_of(ctx))
    if json_out:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    if not entries:
        console.print("No bundles imported yet.")
        return
    columns = [
        Col("name"),
        Col("id"),
        Col("imported", drop_order=3),
        Col("items", drop_order=4),
        Col("signature", drop_order=2),
        Col("file", drop_order=5),
    ]
    rows = [
        [
            e.name,
            e.bundle_id[:12],
            f"{e.imported_at:%Y-%m-%d %H:%M}",
            str(len(e.items)),
            e.signature + (f" ({e.signed_by})" if e.signed_by else ""),
            e.file,
        ]
        for e in entries
    ]
    print_table(console, fit_table(console, columns, rows, wide=wide), wide=wide)


@app.command("keygen")
def keygen(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name: writes NAME.key and NAME.pub.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the key pair.")] = Path("."),
    trust: Annotated[bool, typer.Option("--trust", help="Also trust the public key on this host.")] = False,
) -> None:
    """Make an ed25519 key pair for signing bundles."""
    from cortexctl.bundles.install import trusted_dir
    from cortexctl.bundles.signing import generate_keypair

    private, public, key_id = generate_keypair(directory, name)
    console.print(f"Wrote {private} (keep it secret) and {public}; key id {key_id}.")
    if trust:
        dest = trusted_dir(settings_of(ctx))
        dest.mkdir(parents=True, exist_ok=True)
        (dest / public.name).write_bytes(public.read_bytes())
        console.print(f"Trusted on this host: {dest / public.name}")
    else:
        console.print(f"On importing hosts, copy {public.name} into $CORTEX_HOME/trusted-keys/.")


@app.command("sign")
def sign_cmd(
    bundle: BundleArg,
    key: Annotated[Path, typer.Option("--key", help="The ed25519 private key (NAME.key).", exists=True)],
) -> None:
    """Verify every checksum, then sign the manifest (rewrites only the head of the file)."""
    from cortexctl.bundles.sign import sign_bundle

    with progress_bar() as progress:
        signature = sign_bundle(bundle, key_path=key, progress=progress)
    console.print(f"Signed {bundle.name} with key {signature.key_id}.")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
