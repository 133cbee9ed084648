"""HTTP: the application of one worker. Routing, auth, the handlers and their answers."""
