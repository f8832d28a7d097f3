"""The service layer: what the API does, without HTTP.

Each module holds keyword-only functions that take the session (and whatever
else they need: settings, the executor, the model cache) and return rows or
plain values; they raise ``app.errors`` for anything the caller did wrong. No
FastAPI here: routers parse a request, call one service function and map its
answer; the CLI, workers and later features call the same functions.

Transactions: a service function that writes commits before it returns (and
then wakes the executor or evicts a cache entry); the request's session
dependency never commits. Read-only functions leave the session's transaction
to the caller.
"""
