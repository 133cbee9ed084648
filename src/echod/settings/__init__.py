"""Settings: what echod is configured with, from flags and ``ECHOD_*`` variables."""
