"""Built-in webhook providers, one module each; see ``cairn.webhooks.registry``."""
