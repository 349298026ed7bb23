"""Walk-forward folds and their fingerprints.

A fold is one test session of a level and approach direction. Its results read the code, the
settings, its own triggers and every earlier session's labelled triggers, nothing later: its
fingerprint digests exactly those (chained session after session, so computing every fold's
costs one pass over the triggers). A table that keeps each row's fold fingerprint can take
the rows of an unchanged fold from its previous build (retrieval.warehouse.previous_folds): a
new session costs its own fold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FoldFingerprint:
    session: np.datetime64
    test: np.ndarray  # the session's trigger positions
    fingerprint: str


def fold_fingerprints(
    sessions: np.ndarray,
    labelled: np.ndarray,
    salt: bytes,
    test_parts: Sequence[np.ndarray],
    earlier_parts: Sequence[np.ndarray],
) -> list[FoldFingerprint]:
    """Per session in order: the digest of `salt` (code and settings), the session's
    `test_parts` rows and, chained, every earlier session's labelled `earlier_parts` rows."""
    chain = hashlib.blake2b(salt, digest_size=16).digest()
    folds = []
    for session in np.unique(sessions):
        test = np.flatnonzero(sessions == session)
        folds.append(
            FoldFingerprint(
                session=session,
                test=test,
                fingerprint=digest(chain, *(part[test] for part in test_parts)).hex(),
            )
        )
        mine = test[labelled[test]]
        chain = digest(chain, *(part[mine] for part in earlier_parts))
    return folds


class FingerprintedFold(Protocol):
    test: np.ndarray
    fingerprint: str


def row_fingerprints(rows: int, folds: Iterable[FingerprintedFold]) -> np.ndarray:
    """Each row's fold fingerprint (the folds cover every row once)."""
    fingerprints = np.empty(rows, dtype=object)
    for fold in folds:
        fingerprints[fold.test] = fold.fingerprint
    return fingerprints


def digest(chain: bytes, *parts: np.ndarray) -> bytes:
    result = hashlib.blake2b(chain, digest_size=16)
    for part in parts:
        values = np.char.encode(part, "utf-8") if part.dtype.kind == "U" else part
        result.update(f"{values.dtype}{values.shape}".encode())
        result.update(np.ascontiguousarray(values).tobytes())
    return result.digest()


def code_digest(modules: Iterable[ModuleType], packages: Iterable[str]) -> bytes:
    """The source of the modules a fold's results come from and the versions of the libraries
    they call: another version of either gives every fold a new fingerprint."""
    result = hashlib.blake2b(digest_size=16)
    for module in modules:
        result.update(Path(str(module.__file__)).read_bytes())
    for package in packages:
        result.update(f"{package}=={metadata.version(package)};".encode())
    return result.digest()
