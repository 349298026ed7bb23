"""The replay HUD (`spymaster serve`): a read-only web server over the warehouse and the page
it serves. `warehouse` holds the queries, `protocol` the Arrow IPC wire format, `replay` the
per-client frame stream, `server` the routes; `static/` is the page."""
