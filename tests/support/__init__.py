"""What the tests share: users, patterns, the in-process harness, echod processes."""
