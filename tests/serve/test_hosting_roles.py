"""Hosting for a team: operators, and what one user can and cannot do to or learn of another's work.

Operators are named by ``EMBEDVIZ_OPERATORS`` (or ``[embedviz] operators`` in secrets.toml) and must
be identified by sign-in or the trusted proxy header; a browser guest never is one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from embedviz.serve.access import Viewer, browser_viewer, is_operator, parse_allow_list, signed_in_viewer
from embedviz.serve.catalog import Catalog, RunNotFound, RunNotVisible, made_from

ROOT = Path(__file__).resolve().parents[2]
ALICE = "user:alice@example.org"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)


def _as(monkeypatch, email: str | None, operators: str = "") -> None:
    """The next sessions are ``email`` by the trusted proxy header (``None``: a guest)."""
    import embedviz.ui.auth as auth

    monkeypatch.setenv("EMBEDVIZ_USER_HEADER", "X-Forwarded-Email")
    monkeypatch.setenv("EMBEDVIZ_OPERATORS", operators)
    monkeypatch.setattr(auth, "_header_email", lambda: email)


def _text(at: AppTest) -> str:
    """Every element and block on the page, as text (labels, bodies, help, JSON), with the Markdown
    escapes taken out, so a path shows however it was written."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts).replace("\\", "")


def _home() -> str:
    return os.environ["EMBEDVIZ_HOME"]


def _alice_upload_run(published: bool) -> str:
    """A map run of Alice's made from her uploads and her own weights, as the catalog keeps it."""
    home = Path(_home())
    catalog = Catalog()
    run = catalog.record(
        "map", owner=ALICE, owner_name="alice@example.org", title="alice's [secret](http://evil.example) map",
        inputs={"features": "f" * 64, "map": "m" * 64},
        params={"dataset": {"kind": "folder", "via": "upload", "path": str(home / "sessions" / "a1b2" / "images")},
                "model": {"architecture": "resnet18", "weights": str(home / "sessions" / "a1b2" / "mine.pt")},
                "classes": "/srv/data/classes.json", "layer": "layer4", "token": "t"},
        n_points=25, dedupe="alice-map")
    if published:
        catalog.publish(run.id, ALICE)
    return run.id


# --- who is an operator ----------------------------------------------------------------------------

def test_only_a_listed_identified_viewer_is_an_operator():
    operators = parse_allow_list("alice@example.org, @ops.example.org")
    assert is_operator(signed_in_viewer("Alice@Example.org"), operators)
    assert is_operator(signed_in_viewer("carol@ops.example.org"), operators)
    assert not is_operator(signed_in_viewer("bob@example.org"), operators)
    assert not is_operator(signed_in_viewer("alice@example.org"), ())  # no list: nobody, not everybody
    # a guest is never one, even with a name that reads like a listed address
    assert not is_operator(Viewer("browser:x", "alice@example.org"), operators)
    assert not is_operator(browser_viewer(None, "s"), operators)


# --- clearing the store ----------------------------------------------------------------------------

def _stored_sets() -> list[str]:
    root = Path(_home()) / "features"
    return [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []


def _clear_script() -> None:
    from embedviz.ui.store import clear_feature_store
    from embedviz.ui.widgets import guard

    with guard():
        import streamlit as st

        st.success(f"freed {clear_feature_store()}")


def test_a_guest_cannot_clear_the_store_and_an_operator_can(monkeypatch):
    import streamlit as st

    st.cache_resource.clear()  # features an earlier test's session loaded live on in the server's caches
    st.cache_data.clear()
    _as(monkeypatch, None, operators="alice@example.org")
    guest = _app().run()
    guest.switch_page("pages/2_Extract.py").run()
    assert not guest.exception
    stored = _stored_sets()
    assert stored, "the demo's features should be in the store"
    assert "Clear the feature store" not in [b.label for b in guest.button]
    assert any("your runs use" in e.label for e in guest.expander)
    # the function behind the button refuses a guest too, whatever calls it
    called = AppTest.from_function(_clear_script, default_timeout=60).run()
    assert any("Only an operator of this server can clear the feature store" in e.value for e in called.error)
    assert _stored_sets() == stored

    _as(monkeypatch, "bob@example.org", operators="alice@example.org")  # signed in, but not an operator
    bob = _app().run()
    bob.switch_page("pages/2_Extract.py").run()
    assert "Clear the feature store" not in [b.label for b in bob.button]

    _as(monkeypatch, "alice@example.org", operators="alice@example.org")
    alice = _app().run()
    alice.switch_page("pages/2_Extract.py").run()
    assert not alice.exception
    assert str(Path(_home()) / "features") in _text(alice)  # the operator sees where the store is
    alice.checkbox[-1].check().run()
    [clear] = [b for b in alice.button if b.label == "Clear the feature store"]
    clear.click().run()
    assert any("Freed" in s.value for s in alice.success), [s.value for s in alice.success]
    assert _stored_sets() == []


def test_operators_can_come_from_secrets_toml(monkeypatch):
    _as(monkeypatch, "alice@example.org")
    at = _app()
    at.secrets["embedviz"] = {"operators": ["@example.org"]}
    at.run()
    at.switch_page("pages/6_Runs.py").run()
    assert not at.exception
    assert "Clean up now" in [b.label for b in at.button]
    assert any("The store holds" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Clean up now").click().run()
    assert not at.exception and any("idle workspaces" in s.value for s in at.success)


# --- paths -----------------------------------------------------------------------------------------

def test_a_guest_sees_no_server_path_on_the_extract_and_runs_pages(monkeypatch):
    _as(monkeypatch, None, operators="alice@example.org")
    _alice_upload_run(published=True)
    at = _app().run()
    at.switch_page("pages/2_Extract.py").run()
    assert not at.exception
    assert _home() not in _text(at)
    at.switch_page("pages/6_Runs.py").run()
    assert not at.exception
    text = _text(at)
    assert "alice" in text  # Alice's published run is listed, with what it was made from
    assert _home() not in text and "/srv/data" not in text
    assert "Clean up now" not in [b.label for b in at.button]
    assert any("Your runs use" in c.value for c in at.caption)
    assert not any("The store holds" in c.value for c in at.caption)


def test_made_from_shows_file_names_not_the_owners_workspace():
    run = Catalog().get(_alice_upload_run(published=True))
    shown = made_from(run)
    assert shown["parameters"]["dataset"]["path"] == "an upload"
    assert shown["parameters"]["model"]["weights"] == "an upload"
    assert shown["parameters"]["classes"] == "classes.json"
    assert "token" not in shown["parameters"]
    assert _home() not in repr(shown)
    assert made_from(run, paths=True)["parameters"]["classes"] == "/srv/data/classes.json"  # for operators


# --- links that name a run -------------------------------------------------------------------------

def _link_errors(run: str) -> list[str]:
    at = _app()
    at.query_params["run"] = run
    at.run()
    assert not at.exception
    return [e.value for e in at.error]


def test_a_private_run_and_an_unknown_run_read_the_same(monkeypatch):
    _as(monkeypatch, None)
    private = _alice_upload_run(published=False)
    unknown = "0123456789ab"
    assert len(private) == len(unknown) and Catalog().get(unknown) is None
    seen_private, seen_unknown = _link_errors(private), _link_errors(unknown)
    assert len(seen_private) == 1 and "cannot be opened" in seen_private[0]
    assert seen_private[0].replace(private, "ID") == seen_unknown[0].replace(unknown, "ID")
    # and the same in the catalog, for anything that calls it
    messages = []
    for run_id in (private, unknown):
        with pytest.raises((RunNotFound, RunNotVisible)) as info:
            Catalog().open(run_id, "browser:bob")
        messages.append(str(info.value).replace(run_id, "ID"))
    assert messages[0] == messages[1]


def test_a_run_parameter_with_markdown_is_not_echoed(monkeypatch):
    _as(monkeypatch, None)
    at = _app()
    at.query_params["run"] = "[Session expired - sign in again](http://evil.example) ![x](http://evil.example/x.png)"
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "cannot be opened" in at.error[0].value
    assert "evil" not in _text(at)


# --- what B can do to A's runs ---------------------------------------------------------------------

def _delete_script() -> None:
    from embedviz.serve.catalog import Catalog
    from embedviz.ui.housekeeping import delete_run
    from embedviz.ui.widgets import guard

    with guard():
        run = next(r for r in Catalog().all_runs() if r.owner == "user:alice@example.org")
        delete_run(run)


def test_b_cannot_list_delete_publish_or_pin_a_private_run(monkeypatch):
    private = _alice_upload_run(published=False)
    catalog = Catalog()
    bob = "browser:bob"
    for act in (lambda: catalog.delete(private, bob), lambda: catalog.publish(private, bob),
                lambda: catalog.pin(private, bob)):
        with pytest.raises(RunNotVisible, match="cannot be opened"):  # as if it did not exist
            act()
    run = catalog.get(private)
    assert run is not None and not run.published and not run.pinned
    assert private not in {r.id for r in catalog.runs(bob)}

    _as(monkeypatch, "bob@example.org")
    called = AppTest.from_function(_delete_script, default_timeout=60).run()
    assert any("cannot be opened" in e.value for e in called.error)
    assert Catalog().get(private) is not None

    at = _app().run()
    at.switch_page("pages/6_Runs.py").run()
    assert not at.exception
    text = _text(at)
    assert private not in text and "alice" not in text


def test_b_cannot_change_a_published_run_of_a(monkeypatch):
    published = _alice_upload_run(published=True)
    catalog = Catalog()
    for act in (lambda: catalog.delete(published, "browser:bob"),
                lambda: catalog.publish(published, "browser:bob", False),
                lambda: catalog.pin(published, "browser:bob")):
        with pytest.raises(RunNotVisible, match="only they can change or delete it"):
            act()
    run = catalog.get(published)
    assert run.published and not run.pinned
