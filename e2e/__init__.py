"""The end-to-end harness: real agent CLIs under orch against a local model server."""
