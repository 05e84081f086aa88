"""Everything `cyclogram validate` checks: the configuration, then what depends on it (templates)."""

from __future__ import annotations

import os

from .config import LoadedConfig, load_config, no_cycle_collection
from .errors import ConfigError

__all__ = ["validate_all"]


def validate_all(directory: str | os.PathLike[str]) -> LoadedConfig:
    """Load the configuration and check every template it would render; raise ConfigError with all problems."""
    with no_cycle_collection():
        loaded = load_config(directory)
        problems = []
        for check in _checks():
            problems.extend(check(loaded))
    if problems:
        raise ConfigError(problems)
    return loaded


def _checks() -> list:
    """The checks that go beyond the configuration files themselves."""
    from .documents import check_documents
    from .templating import check_templates

    return [check_templates, check_documents]
