"""Where the default campaign (rules, templates, sample mail) lives.

In an installed wheel they sit inside the package (`mailproc/_bundled/`); in a source
checkout they are the top-level `rules/`, `templates/` and `tests/corpus/` folders.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT_NAMES = {"rules": "rules", "templates": "templates", "sample": "tests/corpus"}


def bundled(name: str) -> Path:
    """The folder of one bundled resource: 'rules', 'templates' or 'sample'."""
    inside = _PACKAGE / "_bundled" / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / _CHECKOUT_NAMES[name]
