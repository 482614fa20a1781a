"""Deterministic random streams derived from one root seed.

Every job names what it draws for (design, seed index, purpose ...) and gets
its own independent stream, so results do not depend on job order or on how
a grid is split into chunks.
"""
import zlib

import numpy as np


def _key(part) -> int:
    # crc32 of the text, not hash(): Python salts str hashes per process.
    return zlib.crc32(str(part).encode())


def seed_sequence(root: int, *keys) -> np.random.SeedSequence:
    """The SeedSequence for (root, *keys); same arguments, same stream."""
    return np.random.SeedSequence(int(root), spawn_key=tuple(_key(k) for k in keys))


def rng(root: int, *keys) -> np.random.Generator:
    """A numpy Generator for (root, *keys)."""
    return np.random.default_rng(seed_sequence(root, *keys))


def int_seed(root: int, *keys) -> int:
    """A 63-bit integer seed for (root, *keys), e.g. for torch.Generator.manual_seed."""
    return int(seed_sequence(root, *keys).generate_state(2, np.uint64)[0] >> np.uint64(1))
