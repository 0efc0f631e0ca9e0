"""The chat playground in Chromium against gemma3-270m on a real llama-server: tokens stream in,
stop cancels the engine request, and the history lives on the server (reload, another device)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SERVED, Appliance, Browser, shot

pytestmark = pytest.mark.browser

FIRST = "List three colours of the sea as a markdown list"
LONG = "Tell me a very long story about a lighthouse keeper, with many chapters"


def _assistant(page: Any) -> Any:
    return page.locator(".msg[data-role='assistant']").last


def _watch_stream(page: Any, *, timeout_s: float = 60) -> list[int]:
    """Lengths of the streaming reply, sampled while it grows, until it ends."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = _assistant(page)
        n = len(msg.locator(".body").inner_text())
        if not seen or n != seen[-1]:
            seen.append(n)
        if msg.get_attribute("data-streaming") is None and n > 0:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the reply did not finish: lengths {seen}")


def _usage_rows(appliance: Appliance) -> list[sqlite3.Row]:
    db = sqlite3.connect(appliance.home / "cortex.db")
    db.row_factory = sqlite3.Row
    try:
        query = "select * from usage_records where endpoint = 'chat.completions' and api_key_id is null"
        return db.execute(query + " order by id").fetchall()
    finally:
        db.close()


def test_chat_streams_stops_and_is_there_after_reload_and_on_another_device(
    browser: Browser, appliance: Appliance, login: Any
) -> None:
    password = appliance.user("carla-chat", "member")
    page = login(browser.page(), "carla-chat", password, then="/chat")
    expect(page.get_by_label("Model", exact=True)).to_have_value(SERVED)
    expect(page.get_by_role("heading", name="Start a conversation")).to_be_visible()
    expect(page.get_by_label("Max tokens")).to_have_value("256")  # the recipe's request default

    # 1. a reply streams in: the text grows over several samples before the stream ends
    page.get_by_label("Max tokens").fill("40")  # short: this machine's 2 cores are shared
    expect(page.get_by_text("Max tokens 40")).to_be_visible()  # an override now, not the default
    page.get_by_label("Message").fill(FIRST)
    page.get_by_label("Message").press("Enter")
    lengths = _watch_stream(page)
    assert len([n for n in lengths if n > 0]) >= 3, f"no visible streaming, lengths seen: {lengths}"
    reply = _assistant(page).locator(".body").inner_text()
    assert reply.strip()
    head = " ".join(reply.split()[:4])  # the reply's first words, whitespace normalised as expect() does
    assert page.get_by_test_id("ttft").inner_text().endswith(" ms")
    assert page.get_by_test_id("tps").inner_text() != "—"
    assert page.get_by_label("Context used").get_attribute("aria-valuenow") not in (None, "0")
    shot(page, "chat")

    # 2. stop: the stream ends at once, the engine request is cancelled and metered as such
    before = len(_usage_rows(appliance))
    page.get_by_label("Max tokens").fill("1500")
    page.get_by_label("Message").fill(LONG)
    page.get_by_role("button", name="Send").click()
    live = page.locator(".msg[data-role='assistant'][data-streaming='true'] .body")
    live.wait_for()
    deadline = time.monotonic() + 60
    while len(live.inner_text()) < 12:  # some of the story has arrived, and more is coming
        assert time.monotonic() < deadline, "the long reply did not start"
        time.sleep(0.05)
    page.get_by_role("button", name="■ Stop").click()
    expect(_assistant(page)).to_contain_text("Stopped")
    stopped_text = _assistant(page).locator(".body").inner_text()
    time.sleep(1.0)
    assert _assistant(page).locator(".body").inner_text() == stopped_text  # nothing more arrives
    deadline = time.monotonic() + 10
    while len(rows := _usage_rows(appliance)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    cancelled = rows[-1]
    # the gateway saw the browser leave mid-stream and closed the engine request (499, cancelled)
    assert cancelled["cancelled"] == 1 and cancelled["status_code"] == 499
    assert cancelled["streamed"] == 1 and cancelled["ttft_ms"] is not None
    assert cancelled["user_id"] is not None and cancelled["org_id"] is not None  # metered to the user's org

    # 3. reload: the conversation is in the sidebar and opens with both turns
    page.reload()
    session = page.get_by_role("navigation", name="Chat history").get_by_role(
        "button", name=FIRST, exact=True
    )
    expect(session).to_be_visible()
    session.click()
    expect(page.locator(".msg[data-role='user']")).to_have_count(2)
    expect(page.locator(".msg[data-role='assistant']").first).to_contain_text(head)

    # 4. another device: a fresh browser context logs in and finds the same conversation
    other = login(browser.page(), "carla-chat", password, then="/chat")
    other.get_by_role("navigation", name="Chat history").get_by_role("button", name=FIRST, exact=True).click()
    expect(other.locator(".msg[data-role='user'] .body").first).to_have_text(FIRST)
    expect(other.locator(".msg[data-role='assistant']").first).to_contain_text(head)

    # 5. search, rename, delete
    other.get_by_label("Search chats").fill("lighthouse")  # found in a message, not the title
    expect(other.locator("[data-session]")).to_have_count(1)
    other.get_by_label("Search chats").fill("zzz-nothing-matches")
    expect(other.get_by_text("No chat matches.")).to_be_visible()
    other.get_by_label("Search chats").fill("")
    other.once("dialog", lambda d: d.accept("Sea poems"))
    other.get_by_role("button", name=f"Rename {FIRST}").click()
    expect(
        other.get_by_role("navigation", name="Chat history").get_by_role(
            "button", name="Sea poems", exact=True
        )
    ).to_be_visible()
    other.once("dialog", lambda d: d.accept())
    other.get_by_role("button", name="Delete Sea poems").click()
    expect(other.get_by_text("No chats yet")).to_be_visible()
