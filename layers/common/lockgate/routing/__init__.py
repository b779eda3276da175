"""Which targets answer a request: the classifier, the router and the fallback executor."""
