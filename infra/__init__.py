"""Lockgate's CDK app: the AWS shape of the gateway (see DESIGN.md, "The two shapes")."""
