"""The directory: domains, the unit tree, accounts, aliases, groups, delegation grants, authentication and authorization."""
