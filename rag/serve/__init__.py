"""`rag serve`: the HTTP API, the engine thread and the web page."""
