"""Where the client finds the service: as the command line does, explicit values first, then
``LIFELINE_URL``/``LIFELINE_TOKEN``, then the file ``lifeline up`` writes
(``$XDG_CONFIG_HOME/lifeline/cli.toml``, or ``~/.config/lifeline/cli.toml``)."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path


def config_path() -> Path | None:
    """The file ``lifeline up`` writes, whether or not it exists."""
    base = os.environ.get("XDG_CONFIG_HOME")
    if base:
        return Path(base) / "lifeline" / "cli.toml"
    home = os.environ.get("HOME")
    if home:
        return Path(home) / ".config" / "lifeline" / "cli.toml"
    return None


def _read_saved() -> dict[str, str]:
    """``url`` and ``token`` from the saved file, when there is one."""
    path = config_path()
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        import tomllib  # type: ignore[import-not-found, unused-ignore]

        data = tomllib.loads(text)
        return {k: v for k, v in data.items() if isinstance(v, str)}
    except ImportError:
        # Python before 3.11: the file holds two basic strings, which need no TOML library.
        found = {}
        for match in re.finditer(r'^\s*(url|token)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$', text, re.M):
            found[match.group(1)] = match.group(2).encode().decode("unicode_escape")
        return found
    except ValueError:
        return {}


def resolve(url: str | None, token: str | None) -> tuple[str, str]:
    """The service's URL and the token to use."""
    url = url or os.environ.get("LIFELINE_URL") or None
    token = token or os.environ.get("LIFELINE_TOKEN") or None
    if url is None or token is None:
        saved = _read_saved()
        url = url or saved.get("url")
        token = token or saved.get("token")
    if not url:
        raise ValueError(
            "no Lifeline service to talk to: pass url= (or set LIFELINE_URL), "
            "or start one with `lifeline up`"
        )
    if not token:
        raise ValueError(
            "no Lifeline token: pass token= (or set LIFELINE_TOKEN); `lifeline up` prints one"
        )
    return url.rstrip("/"), token.strip()


def trust(ca_cert: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """The system's root certificates, and those in ``ca_cert`` (else ``LIFELINE_CA_CERT``):
    a site's own CA. Verification is never off."""
    context = ssl.create_default_context()
    path = ca_cert or os.environ.get("LIFELINE_CA_CERT") or None
    if path is not None:
        try:
            context.load_verify_locations(cafile=os.fspath(path))
        except (OSError, ssl.SSLError) as error:
            raise ValueError(
                f"cannot read CA certificates from {os.fspath(path)}: {error}"
            ) from None
    return context
