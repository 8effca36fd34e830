"""Files only mailproc's own user may read: the archive holds units' mail and attachments, the
ledger their figures and addresses, the outbox and reports what the office says about them.

`mailproc` sets the umask to 077 when it starts; these helpers give the same modes explicitly,
so a file is private however mailproc is started (imported by a test, run under a shell whose
umask is 022) and a temporary left by a crash is not published with its old mode.
"""

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
UMASK = 0o077


def make_folder(path: Path) -> Path:
    """`path` and every missing folder above it, each created 0700 (existing ones are left as
    they are: the folder holding the config may be shared on purpose)."""
    target = Path(path)
    missing, above = [], target
    while not above.exists() and above != above.parent:
        missing.append(above)
        above = above.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # made by another process meanwhile
            continue
        folder.chmod(FOLDER_MODE)  # mkdir's mode is narrowed by the umask, never widened
    return target


def open_private(path: Path, flags: int) -> int:
    """A file descriptor on `path`, created 0600; an existing file is made 0600 too."""
    descriptor = os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return descriptor


def write_private(path: Path, data: bytes) -> None:
    """Write `data` as `path` (0600) through a temporary beside it, so a reader never sees half
    a file and a crash leaves the old one."""
    path = Path(path)
    make_folder(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    with os.fdopen(open_private(temporary, os.O_WRONLY | os.O_TRUNC), "wb") as file:
        file.write(data)
    os.replace(temporary, path)
