"""Opening data files that may be compressed, with errors that name the file."""

import bz2
import contextlib
import gzip
import os
import zlib


def open_binary(path):
    """``path`` opened for reading bytes, decompressed when it ends in .gz or .bz2."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


@contextlib.contextmanager
def decompression_errors(path):
    """Turn a corrupt or truncated .gz / .bz2 stream into a ValueError naming ``path``.

    gzip and bz2 report bad data as EOFError, zlib.error, ``BadGzipFile`` or a plain
    OSError without an errno (bz2's "Invalid data stream"); other OSErrors come from the
    file system (or name a missing file) and are left as they are."""
    try:
        yield
    except (EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: the compressed stream is corrupt or truncated ({exc})") from exc
    except OSError as exc:
        if type(exc) not in (OSError, gzip.BadGzipFile) or exc.errno is not None:
            raise
        raise ValueError(f"{path}: cannot be decompressed ({exc})") from exc
