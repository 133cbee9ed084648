"""Developer scripts: make stack and make openapi, and the Debian package installer."""
