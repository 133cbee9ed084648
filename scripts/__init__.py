"""Developer scripts: make stack's runner (stack.py) and the Debian package installer."""
