"""Model loading (hub, local, tiny init), tokenizers and heads."""
