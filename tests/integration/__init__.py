"""Integration tests: a real echod process on a free loopback port, driven by real clients."""
