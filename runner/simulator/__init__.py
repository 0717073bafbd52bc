"""A faithful local EvoLink simulator (ASGI app) and its tiny video renderer."""
