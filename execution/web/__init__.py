"""The web routes, one module per resource; each route checks who asks and calls an execution command."""
