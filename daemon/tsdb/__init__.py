"""The in-memory series store: interned label sets, per-series ring buffers, a postings index."""
