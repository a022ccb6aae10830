"""An MD5 whose state survives the end of an invocation: the end-to-end check of a copy
that spans several invocations.

CPython's ``hashlib`` objects cannot be serialized, so a copy handed over to another
invocation could not finish the MD5 it started. OpenSSL's low-level MD5 can: its
``MD5_CTX`` is a public, fixed struct (four 32-bit chaining words, a 64-bit bit count, a
64-byte block buffer and its fill), stable since OpenSSL 0.9 and still exported by
OpenSSL 3. At a part boundary (part sizes are multiples of 64 bytes) the block buffer is
empty, so the whole state is the four words and the byte count: 24 bytes of JSON.

The library is the ``libcrypto`` CPython's own ``_hashlib`` already loaded (found in
``/proc/self/maps``), so nothing new is installed; a self-test against ``hashlib`` runs
once. Where it is missing, ``available()`` is False and a copy whose origin gave an MD5
is not handed over (it is abandoned at the deadline as before).

``MD5_Update`` runs through ``ctypes.CDLL``, which releases the GIL: hashing stays in its
own thread at native speed, as with ``hashlib``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

_BLOCK: Final = 64
_WORDS = re.compile(r"[0-9a-f]{32}")


class _Context(ctypes.Structure):
    _fields_ = (
        ("A", ctypes.c_uint32),
        ("B", ctypes.c_uint32),
        ("C", ctypes.c_uint32),
        ("D", ctypes.c_uint32),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
    )


class MD5StateError(ValueError):
    """A saved MD5 state is malformed or inconsistent with the bytes it claims."""


@dataclass(frozen=True, slots=True)
class MD5State:
    """The MD5 of the first ``length`` bytes, ready to continue (``length`` % 64 == 0)."""

    words: str  # A, B, C, D as 32 lowercase hex digits (little-endian words)
    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.words, str) or not _WORDS.fullmatch(self.words):
            raise MD5StateError("the MD5 state must be 32 lowercase hex digits")
        if (
            not isinstance(self.length, int)
            or isinstance(self.length, bool)
            or self.length < 0
            or self.length % _BLOCK
        ):
            raise MD5StateError("the MD5 length must be a whole number of 64-byte blocks")


class ResumableMD5:
    """MD5 that can export its state between parts and start from a saved one."""

    def __init__(self, state: MD5State | None = None) -> None:
        lib = _library()
        if lib is None:
            raise RuntimeError("no libcrypto MD5 in this process")
        self._lib: Any = lib
        self._context = _Context()
        self._lib.MD5_Init(ctypes.byref(self._context))
        if state is not None:
            raw = bytes.fromhex(state.words)
            for index, name in enumerate("ABCD"):
                word = int.from_bytes(raw[4 * index : 4 * index + 4], "little")
                setattr(self._context, name, word)
            bits = state.length * 8
            self._context.Nl = bits & 0xFFFFFFFF
            self._context.Nh = (bits >> 32) & 0xFFFFFFFF

    def update(self, data: bytearray | bytes) -> None:
        size = len(data)
        if not size:
            return
        if isinstance(data, bytearray):
            pointer: Any = (ctypes.c_char * size).from_buffer(data)
        else:
            pointer = data
        self._lib.MD5_Update(ctypes.byref(self._context), pointer, ctypes.c_size_t(size))

    def state(self) -> MD5State:
        """The state after the bytes so far; only at a 64-byte boundary."""
        if self._context.num:
            raise MD5StateError("the MD5 is between two blocks; its state cannot be saved")
        words = b"".join(int(getattr(self._context, name)).to_bytes(4, "little") for name in "ABCD")
        length = ((self._context.Nh << 32) | self._context.Nl) // 8
        return MD5State(words=words.hex(), length=length)

    def hexdigest(self) -> str:
        """The digest of everything so far (the running state is left as it is)."""
        final = _Context()
        ctypes.pointer(final)[0] = self._context  # a copy: MD5_Final destroys its input
        digest = (ctypes.c_ubyte * 16)()
        self._lib.MD5_Final(digest, ctypes.byref(final))
        return bytes(digest).hex()


def available() -> bool:
    """True when a resumable MD5 can be made in this process."""
    return _library() is not None


@lru_cache(maxsize=1)
def _library() -> Any | None:
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            lib.MD5_Init.argtypes = [ctypes.POINTER(_Context)]
            lib.MD5_Update.argtypes = [ctypes.POINTER(_Context), ctypes.c_void_p, ctypes.c_size_t]
            lib.MD5_Final.argtypes = [ctypes.POINTER(ctypes.c_ubyte), ctypes.POINTER(_Context)]
        except (OSError, AttributeError):
            continue
        if _self_test(lib):
            return lib
    return None


def _candidates() -> list[str]:
    paths: list[str] = []
    with contextlib.suppress(ImportError):
        import _hashlib  # noqa: F401 - loads the libcrypto CPython was built with
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "libcrypto" in path and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    found = ctypes.util.find_library("crypto")
    if found and found not in paths:
        paths.append(found)
    return paths


def _self_test(lib: Any) -> bool:
    sample = bytearray(b"edgefill" * 24)  # 192 bytes: three blocks, a saved state between
    context = _Context()
    lib.MD5_Init(ctypes.byref(context))
    lib.MD5_Update(ctypes.byref(context), bytes(sample[:128]), ctypes.c_size_t(128))
    lib.MD5_Update(ctypes.byref(context), bytes(sample[128:]), ctypes.c_size_t(64))
    digest = (ctypes.c_ubyte * 16)()
    lib.MD5_Final(digest, ctypes.byref(context))
    return bytes(digest).hex() == hashlib.md5(sample).hexdigest()
