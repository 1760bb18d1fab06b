"""Image, text and feature processors, one file per model family."""
