"""Proxy tests: nginx, HAProxy and Caddy in front of real echod processes (make test-proxies)."""
