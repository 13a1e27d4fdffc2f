"""Engines: video(s) + parameters -> results. ``native`` (ours) and ``facemap`` (facemap.process.run)."""
