"""The HTTP side: the FastAPI app, its WebSocket endpoint, REST routes, the web client's pages,
and the uvicorn server that runs it."""
