"""The sidebar summary and the secrets reader keep the errors they expect quiet, and let a bug show."""

from __future__ import annotations

import pytest
import streamlit as st

from embedviz.errors import DataError
from embedviz.ui import server, summary


def _raises(exc: BaseException):
    def call(*args, **kwargs):
        raise exc
    return call


@pytest.mark.parametrize("error", [DataError("no such folder"), PermissionError("denied")])
def test_the_sidebar_summary_leaves_out_its_block_on_an_expected_error(monkeypatch, error):
    monkeypatch.setattr(summary, "current_collection", _raises(error))
    assert summary.sidebar_summary() is None


def test_the_sidebar_summary_lets_a_bug_show(monkeypatch):
    monkeypatch.setattr(summary, "current_collection", _raises(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        summary.sidebar_summary()


@pytest.mark.parametrize("error", [PermissionError("denied"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")])
def test_an_unreadable_secrets_file_is_no_section(monkeypatch, error, caplog):
    monkeypatch.setattr(st.secrets, "load_if_toml_exists", _raises(error))
    assert server.secrets_section("embedviz") is None
    assert "Cannot read the secrets file" in caplog.text


def test_a_bug_reading_secrets_shows(monkeypatch):
    monkeypatch.setattr(st.secrets, "load_if_toml_exists", _raises(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        server.secrets_section("embedviz")
