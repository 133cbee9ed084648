"""echod tests: unit tests without sockets, integration tests against real processes."""
