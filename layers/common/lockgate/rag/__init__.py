"""Retrieval-augmented answers: documents in (loaders, chunking, ingestion), grounded answers out
(hybrid retrieval, a prompt that cites numbered sources, the sources list for the response)."""
