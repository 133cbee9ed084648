"""Unit tests: pure functions and the app handler, no sockets and no processes."""
