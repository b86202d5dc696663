"""Who is looking, and whether they may: viewer identity and the operator's allow-list.

A viewer is, in order of trust:

1. the e-mail of a user signed in with Streamlit's OIDC login (``st.login``), when the operator
   configured ``[auth]`` in ``.streamlit/secrets.toml``;
2. the value of a header a reverse proxy sets after its own sign-in (``EMBEDVIZ_USER_HEADER``, e.g.
   ``X-Forwarded-Email`` from oauth2-proxy), only when the operator names that header;
3. otherwise this browser: a hash of the random token in Streamlit's XSRF cookie, which the browser
   keeps until it is closed. Private runs then belong to the browser that made them.

The allow-list (e-mails, or ``@domain``) restricts a hosted instance to the people it names. The
operator list (same form) names who may act on the whole store: clear it, clean it up now, and see
its paths and size. Only a viewer identified by sign-in or the trusted proxy header can be an
operator; a browser guest never is, whatever the list says.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from embedviz import settings

__all__ = ["Viewer", "browser_viewer", "signed_in_viewer", "allowed", "parse_allow_list", "is_operator",
           "allow_list", "operator_list", "env_allow_list", "env_operators",
           "USER_HEADER_VAR", "ALLOWED_VAR", "OPERATORS_VAR"]

#: The header a trusted reverse proxy sets to the signed-in user's e-mail (unset: headers are ignored).
USER_HEADER_VAR = "EMBEDVIZ_USER_HEADER"
#: Comma-separated e-mails or @domains allowed in (also ``[embedviz] allowed`` in secrets.toml).
ALLOWED_VAR = "EMBEDVIZ_ALLOWED"
#: Comma-separated e-mails or @domains of the operators (also ``[embedviz] operators`` in secrets.toml).
OPERATORS_VAR = "EMBEDVIZ_OPERATORS"


@dataclass(frozen=True)
class Viewer:
    """``id`` owns runs; ``name`` is what other people see on published runs."""

    id: str
    name: str
    signed_in: bool = False


def signed_in_viewer(email: str) -> Viewer:
    email = email.strip().lower()
    return Viewer(f"user:{email}", email, True)


def _xsrf_token(cookie: str) -> bytes | None:
    """The random token inside Streamlit's ``_streamlit_xsrf`` cookie (``2|mask|masked|time``, a 4-byte mask), or
    ``None``. The mask changes with every response; the token does not."""
    parts = cookie.split("|")
    if len(parts) != 4 or parts[0] != "2":
        return None
    try:
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    if not mask or not masked:
        return None
    return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))  # the mask repeats (tornado's scheme)


def browser_viewer(xsrf_cookie: str | None, session_id: str) -> Viewer:
    """This browser (while it keeps its cookie), or, with no usable cookie, this session alone."""
    token = _xsrf_token(xsrf_cookie) if xsrf_cookie else None
    if token is not None:
        digest = hashlib.sha256(b"embedviz-browser:" + token).hexdigest()[:16]
        return Viewer(f"browser:{digest}", f"a guest (browser {digest[:6]})")
    digest = hashlib.sha256(b"embedviz-session:" + session_id.encode()).hexdigest()[:16]
    return Viewer(f"session:{digest}", f"a guest (session {digest[:6]})")


def parse_allow_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a@x.org, @y.org"`` (or a list) as lower-case entries; domains keep their ``@``."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    entries = []
    for item in items:
        item = str(item).strip().lower()
        if item:
            entries.append(item if "@" in item else f"@{item}")
    return tuple(entries)


def allowed(email: str | None, allow_list: tuple[str, ...]) -> bool:
    """Whether ``email`` may use the instance: anyone when the list is empty, else a listed
    address or an address in a listed ``@domain``."""
    if not allow_list:
        return True
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    domain = "@" + email.rsplit("@", 1)[1]
    return any(entry == email or (entry.startswith("@") and entry == domain) for entry in allow_list)


def allow_list(secrets: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Who may come in: ``EMBEDVIZ_ALLOWED`` and ``[embedviz] allowed`` (``secrets``: that section, default
    the one given to :func:`embedviz.settings.use_secrets`)."""
    return parse_allow_list(settings.allowed(secrets))


def operator_list(secrets: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The operators: ``EMBEDVIZ_OPERATORS`` and ``[embedviz] operators`` (``secrets`` as for :func:`allow_list`)."""
    return parse_allow_list(settings.operators(secrets))


def env_allow_list() -> tuple[str, ...]:
    """``EMBEDVIZ_ALLOWED`` alone, without the secrets."""
    return allow_list(secrets={})


def env_operators() -> tuple[str, ...]:
    """``EMBEDVIZ_OPERATORS`` alone, without the secrets."""
    return operator_list(secrets={})


def is_operator(viewer: Viewer, operators: tuple[str, ...]) -> bool:
    """Whether ``viewer`` is one of the ``operators`` (e-mails or ``@domain``s): never a guest, and
    nobody when the list is empty (unlike the allow-list, where empty means everyone)."""
    return bool(operators) and viewer.signed_in and allowed(viewer.name, operators)
