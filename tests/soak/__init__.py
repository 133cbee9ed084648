"""Load and fault tests: long under make soak, a few seconds each as a smoke run in CI."""
