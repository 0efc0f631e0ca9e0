"""/admin/recipes against the real app and a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cortex_server.db.engine import make_engine, make_session_factory, session_scope
from cortex_server.db.models import AuditLog, Model
from cortex_server.db.models import Recipe as RecipeRow
from cortex_server.services.bootstrap import local_token_key_name

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "recipes" / "gemma3-270m-cpu.yaml"

RECIPE = """\
# a comment the export must keep
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: tiny
  description: "quoted, with  two spaces"
spec:
  engine: llamacpp
  served_name: tiny-chat
  model: {path: tiny.gguf}     # flow style, kept as written
  args:
    context_length: 1024
"""


def create(daemon, yaml_text: str, source: str | None = None, token: str | None = None):
    return daemon.client.post(
        "/admin/recipes", json={"yaml": yaml_text, "source": source}, headers=daemon.headers(token)
    )


def test_create_show_list(daemon) -> None:
    resp = create(daemon, RECIPE, source="/srv/tiny.yaml")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["name"] == "tiny" and body["engine"] == "llamacpp" and body["served_name"] == "tiny-chat"
    assert body["source"] == "/srv/tiny.yaml" and body["description"] == "quoted, with  two spaces"
    assert body["recipe"]["apiVersion"] == "cortex/v1"
    assert body["recipe"]["spec"]["args"]["context_length"] == 1024
    assert body["recipe"]["spec"]["args"]["parallel"] == 1  # defaults filled in
    listed = daemon.client.get("/admin/recipes", headers=daemon.headers()).json()
    assert [r["name"] for r in listed] == ["tiny"]
    shown = daemon.client.get("/admin/recipes/tiny", headers=daemon.headers()).json()
    assert shown["yaml"] == RECIPE


def test_export_is_byte_for_byte_what_was_applied(daemon) -> None:
    raw = DEMO.read_bytes().decode("utf-8").replace("\n", "\r\n") + "# trailing comment, no newline"
    assert create(daemon, raw).status_code == 201
    resp = daemon.client.get("/admin/recipes/gemma3-270m-cpu/yaml", headers=daemon.headers())
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/yaml")
    assert resp.content == raw.encode("utf-8")
    assert daemon.client.get("/admin/recipes/gemma3-270m-cpu", headers=daemon.headers()).json()["yaml"] == raw


def test_invalid_recipe_is_a_400_with_file_line_field(daemon) -> None:
    bad = RECIPE.replace("context_length: 1024", "context_lenght: 1024\n    extra_args: ['--ctx-sise', '1']")
    resp = create(daemon, bad, source="tiny.yaml")
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_recipe"
    assert (
        "tiny.yaml:12: spec.args.context_lenght: unknown field (did you mean 'context_length'?)"
        in error["message"]
    )
    assert "tiny.yaml:13: spec.args.extra_args[0]: unknown flag --ctx-sise" in error["message"]
    no_source = create(daemon, "kind: [")
    assert no_source.status_code == 400 and no_source.json()["error"]["message"].startswith(
        "<api>:1: (document)"
    )
    assert daemon.client.get("/admin/recipes", headers=daemon.headers()).json() == []


def test_duplicate_name_is_a_conflict_and_put_updates(daemon) -> None:
    assert create(daemon, RECIPE).status_code == 201
    again = create(daemon, RECIPE)
    assert again.status_code == 409 and again.json()["error"]["code"] == "recipe_exists"
    changed = RECIPE.replace("served_name: tiny-chat", "served_name: tiny-v2")
    resp = daemon.client.put("/admin/recipes/tiny", json={"yaml": changed}, headers=daemon.headers())
    assert resp.status_code == 200 and resp.json()["served_name"] == "tiny-v2"
    assert daemon.client.get("/admin/recipes/tiny/yaml", headers=daemon.headers()).text == changed


def test_a_stored_recipe_that_no_longer_validates_is_still_shown(daemon) -> None:
    store = daemon.settings.models_dir
    store.mkdir(parents=True, exist_ok=True)
    template = store / "chat.jinja"
    template.write_text("{{ messages }}")
    text = RECIPE.replace("context_length: 1024", "context_length: 1024\n    chat_template_file: chat.jinja")
    assert create(daemon, text).status_code == 201
    template.unlink()
    shown = daemon.client.get("/admin/recipes/tiny", headers=daemon.headers())
    assert shown.status_code == 200
    assert shown.json()["recipe"] is None and shown.json()["yaml"] == text
    assert shown.json()["problems"] == [
        "recipe tiny:13: spec.args.chat_template_file: file not found in the model store: chat.jinja "
        f"(relative paths start in {store})"
    ]


def test_templates_resolve_in_the_model_store_not_beside_the_source(daemon, tmp_path: Path) -> None:
    source = tmp_path / "tiny.yaml"
    text = RECIPE.replace("context_length: 1024", "context_length: 1024\n    chat_template_file: chat.jinja")
    source.write_text(text)
    (tmp_path / "chat.jinja").write_text("{{ messages }}")  # beside the recipe file: not in the store
    missing = create(daemon, text, source=str(source))
    assert missing.status_code == 400
    assert "file not found in the model store: chat.jinja" in missing.json()["error"]["message"]
    outside = create(daemon, text.replace("chat.jinja", str(tmp_path / "chat.jinja")))
    assert outside.status_code == 400 and "is outside the model store" in outside.json()["error"]["message"]
    daemon.settings.models_dir.mkdir(parents=True, exist_ok=True)
    (daemon.settings.models_dir / "chat.jinja").write_text("{{ messages }}")
    assert create(daemon, text, source=str(source)).status_code == 201


def test_put_refuses_renames_and_unknown_recipes(daemon) -> None:
    assert create(daemon, RECIPE).status_code == 201
    renamed = RECIPE.replace("name: tiny\n", "name: other\n")
    resp = daemon.client.put("/admin/recipes/tiny", json={"yaml": renamed}, headers=daemon.headers())
    assert resp.status_code == 400 and "cannot be renamed" in resp.json()["error"]["message"]
    missing = daemon.client.put("/admin/recipes/nope", json={"yaml": RECIPE}, headers=daemon.headers())
    assert missing.status_code == 404
    assert daemon.client.get("/admin/recipes/nope", headers=daemon.headers()).status_code == 404


def test_delete_refused_while_a_model_uses_the_recipe(daemon) -> None:
    assert create(daemon, RECIPE).status_code == 201
    engine = make_engine(daemon.settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            recipe_id = session.scalar(select(RecipeRow.id).where(RecipeRow.name == "tiny"))
            session.add(Model(name="tiny-1", recipe_id=recipe_id, served_name="tiny-chat"))
        resp = daemon.client.delete("/admin/recipes/tiny", headers=daemon.headers())
        assert resp.status_code == 409
        assert resp.json()["error"]["code"] == "recipe_in_use" and "tiny-1" in resp.json()["error"]["message"]
        with session_scope(make_session_factory(engine)) as session:
            session.delete(session.scalar(select(Model).where(Model.name == "tiny-1")))
        assert daemon.client.delete("/admin/recipes/tiny", headers=daemon.headers()).status_code == 204
        assert daemon.client.get("/admin/recipes/tiny", headers=daemon.headers()).status_code == 404
    finally:
        engine.dispose()


def test_writes_are_audited(daemon) -> None:
    create(daemon, RECIPE, source="/srv/tiny.yaml")
    daemon.client.put("/admin/recipes/tiny", json={"yaml": RECIPE}, headers=daemon.headers())
    daemon.client.delete("/admin/recipes/tiny", headers=daemon.headers())
    engine = make_engine(daemon.settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            rows = session.scalars(
                select(AuditLog).where(AuditLog.action.like("recipes.%")).order_by(AuditLog.id)
            )
            audit = [(r.action, r.target, r.actor) for r in rows]
    finally:
        engine.dispose()
    local = "key:" + local_token_key_name(daemon.settings.home)  # the per-host local admin token
    assert audit == [
        ("recipes.create", "tiny", local),
        ("recipes.update", "tiny", local),
        ("recipes.delete", "tiny", local),
    ]


def test_scopes(daemon) -> None:
    def key(name: str, scopes: list[str]) -> str:
        resp = daemon.client.post(
            "/admin/keys", json={"name": name, "scopes": scopes}, headers=daemon.headers()
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["key"]

    reader, writer, user, operator = (
        key("reader", ["models:read"]),
        key("writer", ["models:write"]),
        key("u", ["inference"]),
        key("op", ["admin"]),
    )
    assert daemon.client.get("/admin/recipes").status_code == 401
    assert daemon.client.get("/admin/recipes", headers=daemon.headers(user)).status_code == 403
    # recipes decide what runs on the host and name host paths: operators only, reads included
    assert daemon.client.get("/admin/recipes", headers=daemon.headers(reader)).status_code == 403
    assert create(daemon, RECIPE, token=reader).status_code == 403
    refused = create(daemon, RECIPE, token=writer)
    assert refused.status_code == 403 and "operators" in refused.json()["error"]["message"]
    assert create(daemon, RECIPE, token=operator).status_code == 201
    assert daemon.client.get("/admin/recipes/tiny/yaml", headers=daemon.headers(reader)).status_code == 403
    assert (
        daemon.client.put(
            "/admin/recipes/tiny", json={"yaml": RECIPE}, headers=daemon.headers(writer)
        ).status_code
        == 403
    )
    assert daemon.client.delete("/admin/recipes/tiny", headers=daemon.headers(writer)).status_code == 403
    assert daemon.client.delete("/admin/recipes/tiny", headers=daemon.headers(operator)).status_code == 204
