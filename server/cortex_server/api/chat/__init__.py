"""The chat playground's routes: session-authenticated history and streaming turns."""
