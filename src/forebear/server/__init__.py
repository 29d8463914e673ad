"""The forebear server: one store shared over HTTP, with users, tokens and project roles
(`app.create_app`, `policy.GuardedBackend`, the web UI behind `session.WebLogin`)."""
