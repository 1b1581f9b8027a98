"""Question answering over a knowledge base: retrieval, readers, evaluation, the CLI."""
