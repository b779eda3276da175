"""Rate limits, token estimates, monthly budgets and usage accounting per tenant and key."""
