"""Every setting embedviz reads, declared once: its environment variable, type, default and meaning, and
whether the dashboard's secrets (the ``[embedviz]`` section of ``.streamlit/secrets.toml``) may set it.

One precedence rule, the same for the dashboard and the command line:

1. the environment variable, when it is set to something other than blanks;
2. else the ``[embedviz]`` secrets key, for the settings that have one (the dashboard passes its secrets in
   with :func:`use_secrets`; the command line has none);
3. else the setting's documented fallback variable (only ``RAY_ADDRESS``, Ray's own name, for the cluster);
4. else the default.

A list setting (the allow-list, the operators, the shared data folders) joins both sources instead: the
variable's entries, then the secrets' entries, so an operator can keep some in each.

Each value is read when it is asked for, so a test or an operator can change it without a restart. A value
that does not parse (``EMBEDVIZ_MAX_ROWS=lots``) is logged and the default used. ``docs/deploy.md`` lists
every setting; ``tests/test_settings.py`` checks the two agree.

This module imports nothing heavy and nothing from the stages: every part of embedviz may use it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Setting", "SETTINGS", "setting", "value", "use_secrets", "configure_logging", "home", "data_roots",
           "allowed", "operators", "user_header", "trusted_models", "ray_address", "warmup", "gc_freeze",
           "session_idle_hours", "store_limit_gb", "job_nice", "KINDS"]

log = logging.getLogger(__name__)

#: How a setting's text is read: ``path`` and ``str`` as they are, ``bool`` (``1/true/yes/on`` or
#: ``0/false/no/off``), ``int`` and ``float`` as numbers, ``list`` split on commas, ``paths`` split on
#: ``os.pathsep`` (both also accept a list from secrets).
KINDS = ("path", "str", "bool", "int", "float", "list", "paths")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One setting: the variable that sets it, how its text is read, its default (``None``: unset), one
    line on what it does, the ``[embedviz]`` secrets key that may also set it, and a fallback variable."""

    var: str
    kind: str
    default: Any
    meaning: str
    secret: str | None = None
    fallback: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.var}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def name(self) -> str:
        """The setting's short name: its variable without the prefix, lower case (``max_rows``)."""
        return self.var.removeprefix("EMBEDVIZ_").lower()

    def shown_default(self) -> str:
        """The default as ``docs/deploy.md`` writes it: ``unset``, ``0``/``1`` for a switch, a number
        without its thousands separators, or the text."""
        if self.default is None or (self.kind in ("list", "paths") and not self.default):
            return "unset"
        if self.kind == "bool":
            return "1" if self.default else "0"
        if isinstance(self.default, float) and self.default == int(self.default):
            return str(int(self.default))
        return str(self.default)

    def parse(self, raw: Any) -> Any:
        """``raw`` (text from the environment, or what secrets.toml holds) as this setting's type;
        ``ValueError`` when it does not read as one."""
        if self.kind in ("list", "paths"):
            if isinstance(raw, str):
                items = raw.split("," if self.kind == "list" else os.pathsep)
            elif isinstance(raw, Iterable):
                items = [str(item) for item in raw]
            else:
                raise ValueError(f"{self.var} takes a list, not {raw!r}")
            return tuple(item.strip() for item in items if item.strip())
        text = str(raw).strip()
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"{self.var} takes 1 or 0, not {text!r}")
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        if self.kind == "path":
            return Path(text).expanduser()
        return text


#: Every setting, by short name. The caps (``max_*``, ``workspace_*``, ``job*``) are read through
#: :mod:`embedviz.limits`, which adds their units and messages.
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("EMBEDVIZ_HOME", "path", "~/.embedviz", "where everything is kept"),
    Setting("EMBEDVIZ_DATA_ROOTS", "paths", (), "folders 'Path on this server' may read", secret="data_roots"),
    Setting("EMBEDVIZ_ALLOWED", "list", (), "e-mails or @domains allowed in (none: everyone)", secret="allowed"),
    Setting("EMBEDVIZ_OPERATORS", "list", (), "e-mails or @domains who may manage the store", secret="operators"),
    Setting("EMBEDVIZ_USER_HEADER", "str", None, "a proxy's header trusted as the signed-in user's e-mail"),
    Setting("EMBEDVIZ_TRUSTED_MODELS", "bool", False, "allow model files that carry code"),
    Setting("EMBEDVIZ_RAY_ADDRESS", "str", None, "the Ray cluster extractions may run on", secret="ray_address",
       fallback="RAY_ADDRESS"),
    Setting("EMBEDVIZ_WARMUP", "bool", True, "compile UMAP in a background process at start"),
    Setting("EMBEDVIZ_GC_FREEZE", "bool", True, "keep long-lived objects out of the collection after every script run"),
    Setting("EMBEDVIZ_SESSION_IDLE_HOURS", "float", 24.0, "hours before an unused session's uploads are deleted"),
    Setting("EMBEDVIZ_STORE_LIMIT_GB", "float", None, "cap on the store's disk use, in GiB"),
    Setting("EMBEDVIZ_JOB_NICE", "int", 10, "the priority (nice level) jobs run at, below the pages"),
    Setting("EMBEDVIZ_LOG_LEVEL", "str", "INFO", "the least severe of embedviz's log lines the server prints"),
    Setting("EMBEDVIZ_MAX_FEATURES_MB", "float", 2048.0, "features from one file, decompressed, in MiB"),
    Setting("EMBEDVIZ_MAX_ROWS", "float", 2_000_000.0, "rows in one features file or table"),
    Setting("EMBEDVIZ_MAX_COLUMNS", "float", 100_000.0, "columns in one features file or table"),
    Setting("EMBEDVIZ_MAX_TABLE_MB", "float", 1024.0, "one table or manifest, in MiB"),
    Setting("EMBEDVIZ_MAX_ARCHIVE_FILES", "float", 200_000.0, "members of one archive"),
    Setting("EMBEDVIZ_MAX_ARCHIVE_MB", "float", 20_480.0, "one archive unpacked, in MiB"),
    Setting("EMBEDVIZ_WORKSPACE_MB", "float", 20_480.0, "one user's uploads and unpacked archives, in MiB"),
    Setting("EMBEDVIZ_WORKSPACE_FILES", "float", 250_000.0, "files in one user's workspace"),
    Setting("EMBEDVIZ_JOBS_PER_USER", "float", 3.0, "jobs one user may have queued or running"),
    Setting("EMBEDVIZ_JOB_TIMEOUT_S", "float", 0.0, "seconds one job may run (0: no limit)"),
)}

_secrets: Callable[[], Mapping[str, Any] | None] | None = None


def use_secrets(source: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None) -> None:
    """Where the ``[embedviz]`` secrets come from: the section itself, a function that returns it when
    asked (the dashboard passes one that reads ``st.secrets``, so an edited file is seen), or ``None``
    (the command line: no secrets)."""
    global _secrets
    if source is None or callable(source):
        _secrets = source
    else:
        section = dict(source)
        _secrets = lambda: section  # noqa: E731


def setting(name: str) -> Setting:
    """The setting called ``name`` (``"max_rows"``) or with the variable ``name`` (``"EMBEDVIZ_MAX_ROWS"``)."""
    return SETTINGS[name.removeprefix("EMBEDVIZ_").lower()]


def _section(secrets: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if secrets is not None:
        return secrets
    if _secrets is None:
        return {}
    return _secrets() or {}


def _parsed(s: Setting, raw: Any, where: str) -> Any:
    try:
        return s.parse(raw)
    except (TypeError, ValueError):
        log.warning("%s=%r (from %s) does not read as %s; using its default, %s.", s.var, raw, where, s.kind,
                    s.shown_default())
        return None


def value(name: str, secrets: Mapping[str, Any] | None = None) -> Any:
    """The setting ``name``'s value by the precedence rule above; ``secrets``: the ``[embedviz]`` section
    to use instead of the one given to :func:`use_secrets`."""
    s = setting(name)
    raw_env = os.environ.get(s.var, "")
    from_env = _parsed(s, raw_env, "the environment") if raw_env.strip() else None
    section = _section(secrets) if s.secret else {}
    raw_secret = section.get(s.secret) if s.secret else None
    blank = raw_secret is None or (isinstance(raw_secret, str) and not raw_secret.strip())
    from_secrets = None if blank else _parsed(s, raw_secret, f"[embedviz] {s.secret}")
    if s.kind in ("list", "paths"):
        return (from_env or ()) + (from_secrets or ())
    for found in (from_env, from_secrets):
        if found is not None:
            return found
    if s.fallback and os.environ.get(s.fallback, "").strip():
        found = _parsed(s, os.environ[s.fallback], "the environment")
        if found is not None:
            return found
    return s.parse(s.default) if s.kind == "path" else s.default


def home() -> Path:
    """``$EMBEDVIZ_HOME``: the root of every cache and workspace (not created here; see
    :func:`embedviz.layout.home_dir`)."""
    return value("home")


def data_roots(secrets: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    return value("data_roots", secrets)


def allowed(secrets: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    return value("allowed", secrets)


def operators(secrets: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    return value("operators", secrets)


def user_header() -> str | None:
    return value("user_header")


def trusted_models() -> bool:
    return value("trusted_models")


def ray_address(secrets: Mapping[str, Any] | None = None) -> str | None:
    """The Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``, or ``local`` for one started on this
    machine), or ``None``: ``EMBEDVIZ_RAY_ADDRESS``, then ``[embedviz] ray_address``, then ``RAY_ADDRESS``."""
    return value("ray_address", secrets)


def warmup() -> bool:
    return value("warmup")


def gc_freeze() -> bool:
    return value("gc_freeze")


def session_idle_hours() -> float:
    return value("session_idle_hours")


def store_limit_gb() -> float | None:
    return value("store_limit_gb")


def job_nice() -> int:
    return value("job_nice")


class _StandardError(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a line is logged, not the stream it was at
    set-up (a test's captured stream, closed since, gave "--- Logging error ---" tracebacks)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(quiet: bool = False) -> None:
    """Send embedviz's log lines (jobs starting, ending and failing with their tracebacks, housekeeping,
    the catalog) to standard error at ``EMBEDVIZ_LOG_LEVEL``, once per process; the dashboard and the
    command line call it at start (``quiet``: the command line, whose progress is on stderr already, shows
    warnings only unless ``EMBEDVIZ_LOG_LEVEL`` is set). A logger the host already set up is left alone."""
    logger = logging.getLogger("embedviz")
    if logger.handlers:
        return
    handler = _StandardError()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    level = "WARNING" if quiet and not os.environ.get(setting("log_level").var, "").strip() else \
        str(value("log_level")).upper()
    logger.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
