"""The notebook the agent works on, by cell id, and its homes: a file plus a kernel, the
live kernel, the browser (the server's ``BrowserNotebook``)."""
