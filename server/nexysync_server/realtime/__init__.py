"""Realtime delivery: the per-process hub that orders events and fans them out, and its watcher."""
