"""Active Sessions: a live admin console for a business VPN / zero-trust network."""
