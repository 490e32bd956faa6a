"""glibc's allocator statistics as a ctypes structure, shared by every reader.

``mallinfo2()`` (glibc >= 2.33) returns this struct by value; the fragmentation
breakdown, the doctor's native signal and the remedies' trim step all read it.
"""

from __future__ import annotations

import ctypes


class MallInfo2(ctypes.Structure):
    """``struct mallinfo2``: every field a ``size_t``, in glibc's order."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]
