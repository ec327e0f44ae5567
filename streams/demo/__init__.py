"""`overseer demo`: the whole loop on local infrastructure with synthetic fleet traffic."""
