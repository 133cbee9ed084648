"""The allocator settings that a serving process makes before it imports granian."""

from __future__ import annotations

import platform

from echod.instance import allocators


def test_jemalloc_is_told_unless_the_environment_already_says() -> None:
    """_RJEM_MALLOC_CONF gets echod's setting; one that is set already is kept."""
    environ: dict[str, str] = {}
    allocators.tune(environ)
    assert environ == {"_RJEM_MALLOC_CONF": allocators.JEMALLOC_CONF}
    assert "background_thread:true" in allocators.JEMALLOC_CONF.split(",")
    own = {"_RJEM_MALLOC_CONF": "narenas:2"}
    allocators.tune(own)
    assert own == {"_RJEM_MALLOC_CONF": "narenas:2"}


def test_glibc_takes_the_fixed_mmap_threshold() -> None:
    """On glibc, mallopt accepts the threshold (it returns 1 on success)."""
    expected = platform.libc_ver()[0] == "glibc"
    assert allocators.tune({}) is expected
