"""Upstream model providers: one package per provider, each behind the `Provider` port."""
