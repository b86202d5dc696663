"""The settings module against docs/deploy.md (both ways), and its one precedence rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from embedviz import settings
from embedviz.extract.ray_options import configured_address
from embedviz.extract.store import FeatureStore
from embedviz.layout import Layout, layout
from embedviz.limits import CAPS, cap

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
_ROW = re.compile(r"^\|\s*`(?P<var>[A-Z][A-Z0-9_]+)`\s*\|(?P<default>[^|]*)\|(?P<what>.*)\|\s*$")


def documented(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each variable in a table of ``text``, with the (default, what) of every row that names it."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            rows.setdefault(m["var"], []).append((m["default"].strip(), m["what"].strip()))
    return rows


def shown(default: str) -> str:
    """A table's default as :meth:`Setting.shown_default` writes it: backticks, thousands separators and a
    note in brackets dropped (``2,048`` -> ``2048``, ``unset (no limit)`` -> ``unset``)."""
    return default.replace("`", "").split(" (")[0].replace(",", "").strip()


def check(text: str) -> list[str]:
    """What disagrees between the table(s) in ``text`` and :data:`settings.SETTINGS`."""
    rows = documented(text)
    problems = [f"{s.var} is not documented" for s in settings.SETTINGS.values() if s.var not in rows]
    for var, found in rows.items():
        if var.removeprefix("EMBEDVIZ_").lower() not in settings.SETTINGS:
            problems.append(f"{var} is documented but embedviz reads no such setting")
            continue
        s = settings.setting(var)
        for default, what in found:
            if shown(default) != s.shown_default():
                problems.append(f"{var}: documented default {default!r}, declared {s.shown_default()!r}")
            keys = re.findall(r"`\[embedviz\] (\w+)`", what)
            if keys != ([s.secret] if s.secret and keys else []):
                problems.append(f"{var}: documented secrets key {keys}, declared {s.secret!r}")
            if s.fallback and s.fallback not in what:
                problems.append(f"{var}: its fallback {s.fallback} is not documented")
        if s.secret and not any(f"`[embedviz] {s.secret}`" in what for _, what in found):
            problems.append(f"{var}: its secrets key {s.secret} is not documented")
    return problems


def test_deploy_doc_lists_every_setting_with_its_default():
    assert check(DEPLOY.read_text()) == []


def test_the_doc_check_notices_a_difference():
    text = DEPLOY.read_text()
    assert any("EMBEDVIZ_JOB_NICE: documented default" in p
               for p in check(text.replace("| `EMBEDVIZ_JOB_NICE` | 10 |", "| `EMBEDVIZ_JOB_NICE` | 5 |")))
    assert "EMBEDVIZ_WARMUP is not documented" in check(
        "\n".join(line for line in text.splitlines() if "`EMBEDVIZ_WARMUP`" not in line))
    assert "EMBEDVIZ_NOPE is documented but embedviz reads no such setting" in check(
        text + "\n| `EMBEDVIZ_NOPE` | 1 | x |\n")
    assert any("secrets key" in p for p in check(text.replace("`[embedviz] allowed`", "`[embedviz] allow`")))


def test_every_cap_is_a_setting_with_the_same_default():
    for name, c in CAPS.items():
        assert settings.setting(c.var).name == name
        assert c.default == settings.SETTINGS[name].default
        assert settings.SETTINGS[name].secret is None  # caps are the operator's, set where the server runs


@pytest.fixture
def clean(monkeypatch):
    for s in settings.SETTINGS.values():
        monkeypatch.delenv(s.var, raising=False)
        if s.fallback:
            monkeypatch.delenv(s.fallback, raising=False)
    settings.use_secrets(None)
    yield monkeypatch
    settings.use_secrets(None)


def test_environment_then_secrets_then_fallback_then_default(clean):
    assert settings.ray_address() is None
    clean.setenv("RAY_ADDRESS", "ray-env:10001")
    assert settings.ray_address() == "ray-env:10001"
    settings.use_secrets({"ray_address": "from-secrets:6379"})
    assert settings.ray_address() == "from-secrets:6379"
    clean.setenv("EMBEDVIZ_RAY_ADDRESS", " auto ")
    assert settings.ray_address() == "auto"
    assert settings.ray_address(secrets={"ray_address": "other"}) == "auto"
    clean.setenv("EMBEDVIZ_RAY_ADDRESS", "   ")  # blank is unset
    assert settings.ray_address() == "from-secrets:6379"
    assert settings.ray_address(secrets={}) == "ray-env:10001"  # a section given overrides the one configured
    assert configured_address() == settings.ray_address()  # the dashboard and the command line read one rule


def test_secrets_are_read_when_asked(clean):
    section: dict = {}
    settings.use_secrets(lambda: section)
    assert settings.ray_address() is None
    section["ray_address"] = "later:1"
    assert settings.ray_address() == "later:1"
    settings.use_secrets(lambda: None)  # no secrets file
    assert settings.ray_address() is None


def test_a_setting_without_a_secrets_key_ignores_secrets(clean):
    settings.use_secrets({"job_nice": 3, "home": "/elsewhere", "max_rows": 5})
    assert settings.job_nice() == 10
    assert cap("max_rows").value() == 2_000_000
    assert settings.home() == Path("~/.embedviz").expanduser()


def test_lists_join_environment_and_secrets(clean):
    clean.setenv("EMBEDVIZ_ALLOWED", "a@x.org, @y.org")
    settings.use_secrets({"allowed": ["b@z.org"], "data_roots": "/srv/a:/srv/b"})
    assert settings.allowed() == ("a@x.org", "@y.org", "b@z.org")
    clean.setenv("EMBEDVIZ_DATA_ROOTS", "/data")
    assert settings.data_roots() == ("/data", "/srv/a", "/srv/b")
    assert settings.data_roots(secrets={}) == ("/data",)
    assert settings.operators() == ()


def test_types_and_unreadable_values(clean, caplog):
    clean.setenv("EMBEDVIZ_JOB_NICE", "5")
    clean.setenv("EMBEDVIZ_SESSION_IDLE_HOURS", "0.5")
    clean.setenv("EMBEDVIZ_WARMUP", "off")
    clean.setenv("EMBEDVIZ_TRUSTED_MODELS", "Yes")
    assert (settings.job_nice(), settings.session_idle_hours(), settings.warmup(), settings.trusted_models()) == \
        (5, 0.5, False, True)
    clean.setenv("EMBEDVIZ_MAX_ROWS", "lots")
    clean.setenv("EMBEDVIZ_WARMUP", "maybe")
    assert cap("max_rows").value() == 2_000_000 and settings.warmup() is True
    assert "EMBEDVIZ_MAX_ROWS='lots'" in caplog.text and "EMBEDVIZ_WARMUP='maybe'" in caplog.text
    clean.setenv("EMBEDVIZ_STORE_LIMIT_GB", "1.5")
    assert settings.store_limit_gb() == 1.5
    clean.setenv("EMBEDVIZ_HOME", "~/somewhere")
    assert settings.home() == Path("~/somewhere").expanduser()


def test_layout_names_each_place_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_HOME", str(tmp_path / "home"))
    where = layout()
    assert where == Layout(tmp_path / "home") and where.home.is_dir()
    assert where.work.parent == where.features and where.graphs.parent == where.maps
    assert where.map_file("k") == where.maps / "k.npz" and where.graph_file("g") == where.graphs / "g.npz"
    assert where.workspace("w").parent == where.workspaces
    assert FeatureStore().folder("k") == where.feature_set("k") and FeatureStore().work_folder("w").parent == where.work
    assert where.stored("weights", "ab" * 32) == where.home / "weights" / ("ab" * 8)
    with pytest.raises(ValueError):
        where.stored("../x", "ab")
    places = [where.features, where.maps, where.unpacked, where.workspaces, where.numba, where.demo, where.catalog]
    assert len(set(places)) == len(places) and all(p.parent == where.home for p in places)


def test_the_command_line_logs_warnings_only_unless_asked(monkeypatch):
    """Its progress is on stderr already: job and engine lines join it only with EMBEDVIZ_LOG_LEVEL."""
    import logging

    logger = logging.getLogger("embedviz")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.delenv("EMBEDVIZ_LOG_LEVEL", raising=False)
    settings.configure_logging(quiet=True)
    assert logger.level == logging.WARNING
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setenv("EMBEDVIZ_LOG_LEVEL", "info")
    settings.configure_logging(quiet=True)
    assert logger.level == logging.INFO
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.delenv("EMBEDVIZ_LOG_LEVEL")
    settings.configure_logging()  # the dashboard: the setting's default
    assert logger.level == logging.INFO
    logger.setLevel(logging.NOTSET)
