"""OpenSearch adapters through opensearch-py: k-NN vectors and BM25 text."""
