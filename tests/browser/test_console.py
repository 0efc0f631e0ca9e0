"""The console in Chromium against the real appliance: login, models, keys with the openai SDK,
roles and tenants, and a screenshot of each main page."""

from __future__ import annotations

import re
import time
from typing import Any

import openai
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_MODEL, SERVED, Appliance, Browser, shot

pytestmark = pytest.mark.browser

MAIN_PAGES = [
    ("/", "Dashboard"),
    ("/models", "Models"),
    ("/recipes", "Recipes"),
    ("/keys", "API keys"),
    ("/users", "Users & orgs"),
    ("/usage", "Usage"),
    ("/system", "System & health"),
    ("/audit", "Audit log"),
    ("/guide", "Guide"),
    ("/account", "Account"),
]


def test_a_wrong_password_shows_an_error(browser: Browser, appliance: Appliance) -> None:
    page = browser.page()
    page.goto("/")
    page.wait_for_url("**/login?next=*")  # no session: the console sends you to log in
    page.get_by_label("Username").fill(appliance.admin_user)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".alert.error")).to_contain_text("password")  # not Next's route announcer
    assert page.url.endswith("/login?next=%2F") or "/login" in page.url
    shot(page, "login-error")


def test_admin_sees_the_model_running_and_every_page(
    browser: Browser, appliance: Appliance, login: Any
) -> None:
    page = login(browser.page())
    row = page.locator(f"tr[data-model='{DEMO_MODEL}']")
    expect(row.locator("[data-state]")).to_have_text("running")
    shot(page, "dashboard")
    for path, heading in MAIN_PAGES:
        page.goto(path)
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        expect(page.locator(".alert.error")).to_have_count(0)
        if path == "/models":
            page.get_by_role("button", name=f"Show {DEMO_MODEL}").click()
            page.get_by_role("tab", name="Validate").click()
            page.get_by_role("button", name="Run validation").click()
            expect(page.get_by_label("Memory breakdown")).to_contain_text("Total")
        if path == "/system":  # doctor's checks, each with its status
            expect(page.get_by_label("Health checks")).to_contain_text("database")
        if path == "/guide":
            expect(page.get_by_role("region", name="Recipe format")).to_contain_text("apiVersion")
            expect(page.get_by_role("region", name="Troubleshooting")).to_contain_text("port-in-use")
        page.wait_for_load_state("networkidle")  # the page's data is in before the screenshot
        shot(page, path.strip("/") or "dashboard")
    # client-side navigation (RSC payloads) works too, not only full loads
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", level=1, name="Models")).to_be_visible()


def test_recipe_errors_point_at_the_line(browser: Browser, login: Any) -> None:
    page = login(browser.page(), then="/recipes")
    page.get_by_role("button", name=DEMO_MODEL).click()
    editor = page.get_by_label("Recipe YAML")
    expect(editor).to_have_value(re.compile("served_name: gemma3-270m"))
    text = editor.input_value()
    assert "served_name: gemma3-270m" in text
    lines = text.splitlines()
    bad_line = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("engine:"))
    lines[bad_line - 1] = lines[bad_line - 1].replace("llamacpp", "no-such-engine")
    editor.fill("\n".join(lines) + "\n")
    page.get_by_role("button", name="Save").click()
    errors = page.get_by_test_id("yaml-errors")
    expect(errors).to_contain_text(f"line {bad_line}")
    expect(page.locator(f"[data-bad-line='{bad_line}']")).to_be_visible()


def test_an_api_key_made_in_the_console_works_with_the_sdk_until_revoked(
    browser: Browser, appliance: Appliance, login: Any
) -> None:
    page = login(browser.page(), then="/keys")
    page.get_by_role("button", name="+ Create key").click()
    dialog = page.get_by_role("dialog", name="Create an API key")
    dialog.get_by_label("Name", exact=True).fill("browser-sdk")
    dialog.get_by_label("Allowed models").fill(SERVED)
    dialog.get_by_label("Requests / min").fill("100")
    dialog.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert key.startswith("sk-cortex-")
    shot(page, "key-created")

    client = openai.OpenAI(base_url=appliance.url + "/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model=SERVED, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    page.get_by_role("button", name="Done").click()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke browser-sdk").click()
    expect(page.locator("tr[data-key='browser-sdk'] [data-state]")).to_have_text("revoked")
    deadline = time.monotonic() + 10  # the key cache holds a principal for at most 2 s
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError as exc:
            assert exc.status_code == 401
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.3)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )


def test_a_viewer_is_offered_no_write_action(browser: Browser, appliance: Appliance, login: Any) -> None:
    password = appliance.user("vera-viewer", "viewer")
    page = login(browser.page(), "vera-viewer", password)
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Models")).to_be_visible()
    hidden_links = ("Recipes", "API keys", "Users & orgs", "Audit log", "System & health", "Chat playground")
    for hidden in hidden_links:  # recipes and system name host paths: operators only
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    page.goto("/models")
    page.get_by_role("button", name=f"Show {DEMO_MODEL}").click()
    expect(page.get_by_label(f"Model {DEMO_MODEL}")).to_be_visible()
    for action in ("+ Create model", "▶ Start", "■ Stop", "↻ Restart", "Delete"):
        expect(page.get_by_role("button", name=action, exact=True)).to_have_count(0)
    shot(page, "viewer-models")


def test_a_tenant_admin_sees_only_their_org(browser: Browser, appliance: Appliance, login: Any) -> None:
    appliance.admin("POST", "/admin/orgs", json={"name": "acme"})
    password = appliance.user("acme-admin", "admin", org="acme")
    appliance.user("acme-bob", "member", org="acme")
    appliance.admin("POST", "/admin/keys", json={"name": "acme-key", "scopes": ["inference"], "org": "acme"})
    appliance.admin("POST", "/admin/keys", json={"name": "default-org-key", "scopes": ["inference"]})

    page = login(browser.page(), "acme-admin", password, then="/users")
    users = page.get_by_label("Users", exact=True)
    expect(users.locator("tr[data-user='acme-bob']")).to_be_visible()
    expect(users.locator("tr[data-user='acme-admin']")).to_be_visible()
    expect(users.locator(f"tr[data-user='{appliance.admin_user}']")).to_have_count(0)
    expect(page.get_by_label("Organizations", exact=True).locator("tr[data-org]")).to_have_count(1)
    expect(page.get_by_role("button", name="+ New organization")).to_have_count(0)
    shot(page, "tenant-users")
    page.goto("/keys")
    expect(page.locator("tr[data-key='acme-key']")).to_be_visible()
    expect(page.locator("tr[data-key='default-org-key']")).to_have_count(0)
    expect(page.locator("tr[data-key='demo']")).to_have_count(0)
    page.goto("/models")  # models are appliance-wide: a tenant admin reads them but never changes them
    expect(page.get_by_role("button", name="+ Create model")).to_have_count(0)


def test_password_change_then_logout_and_login_with_the_new_one(
    browser: Browser, appliance: Appliance, login: Any
) -> None:
    old = appliance.user("pat-member", "member")
    page = login(browser.page(), "pat-member", old, then="/account")
    page.get_by_label("Current password").fill(old)
    page.get_by_label("New password", exact=True).fill("a-brand-new-password-42")
    page.get_by_label("New password, again").fill("a-brand-new-password-42")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login*")
    page.goto("/")
    page.wait_for_url("**/login?next=*")  # the session really ended
    login(page, "pat-member", "a-brand-new-password-42")
    expect(page.get_by_test_id("whoami")).to_have_text("pat-member")


def test_api_docs_render_from_the_package(browser: Browser, appliance: Appliance) -> None:
    page = browser.page()
    page.goto("/docs")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("CORTEX")
    expect(page.get_by_text("/v1/chat/completions").first).to_be_visible()
    shot(page, "docs")
    page.goto("/redoc")
    expect(page.get_by_role("heading", name="CORTEX").first).to_be_visible()
    expect(page.get_by_text("/v1/chat/completions").first).to_be_attached()


def test_create_validate_and_delete_a_model_from_the_form(browser: Browser, login: Any) -> None:
    page = login(browser.page(), then="/models")
    page.get_by_role("button", name="+ Create model").click()
    dialog = page.get_by_role("dialog", name="Create a model")
    dialog.get_by_role("tab", name="From a form").click()
    dialog.get_by_label("Recipe name").fill("form-made")
    dialog.get_by_label("Model path").fill("not-there.gguf")
    dialog.get_by_label("Served name").fill("form-made")
    dialog.get_by_label("Start it now").uncheck()
    dialog.get_by_role("button", name="Create model").click()
    expect(dialog).to_have_count(0)
    detail = page.get_by_label("Model form-made")
    expect(detail.locator("[data-state]").first).to_have_text("stopped")
    detail.get_by_role("tab", name="Validate").click()
    detail.get_by_role("button", name="Run validation").click()
    checks = page.get_by_label("Checks")
    expect(checks).to_contain_text("model_file")
    expect(checks).to_contain_text("FAIL")
    expect(checks).to_contain_text("Fix:")
    page.once("dialog", lambda d: d.accept())
    detail.get_by_role("button", name="Delete").click()
    expect(page.locator("tr[data-model='form-made']")).to_have_count(0)


def test_the_request_recorder_flags_every_other_origin() -> None:
    """The off-host check the `browser` fixture ends each test with can fail."""
    b = Browser(browser=None, origin="http://127.0.0.1:8080")
    b.requests = [
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/_next/static/chunks/a.js",
        "data:image/svg+xml;base64,PHN2Zy8+",
        "blob:http://127.0.0.1:8080/5b1c",
        "http://127.0.0.1:8081/",
        "https://cdn.redoc.ly/redoc/logo-mini.svg",
        "http://127.0.0.1:8080.example.com/x.js",
        "ws://127.0.0.1:8080/",
    ]
    assert b.offsite() == b.requests[4:]
